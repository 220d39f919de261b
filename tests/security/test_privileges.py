"""Dropping root: bind a privileged port as root, then run (and deliver) as `nobody`."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import Server, wait_for
from support.tlsauth import set_password

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping root needs root")


def _free_privileged_port() -> int:
    for port in range(1023, 600, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 1024")


@pytest.fixture
def world_root() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's own tmp dirs are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="posthorn-priv-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


def test_binds_port_below_1024_then_runs_as_nobody(world_root: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    port = _free_privileged_port()
    config = '[server]\nhostname = "mx.test"\nuser = "nobody"\n'
    config += "[auth]\nallow_plaintext_loopback = true\n"
    server = Server(world_root / "mx", config, port=port)
    server.start()
    try:
        assert server.proc is not None
        # The port accepts connections from the moment it is bound, just before the
        # drop, so `start` can return while the daemon is still root: wait for the drop.
        wait_for(lambda: "running as user nobody" in server.log(), what="the privilege drop")
        assert _uids(server.proc.pid) == [nobody.pw_uid] * 4  # real, effective, saved, fs
        with server.smtp() as client:
            client.sendmail("alice@example.org", ["bob@mx.test"], b"Subject: priv\r\n\r\nhi\r\n")
        (path,) = server.wait_delivered("bob")
        assert path.stat().st_uid == nobody.pw_uid
        # Root adds a user while the daemon runs: the file stays readable by the daemon.
        passwd = server.data_dir / "passwd"
        assert set_password(passwd, "alice", "pw").returncode == 0
        assert passwd.stat().st_uid == nobody.pw_uid
        with server.smtp() as client:
            client.ehlo()
            assert client.login("alice", "pw")[0] == 235
    finally:
        server.stop()


def test_unknown_user_is_a_config_error(world_root: Path) -> None:
    server = Server(world_root / "mx", '[server]\nuser = "no-such-user-here"\n')
    with pytest.raises(AssertionError, match="exited with 78"):
        server.start()
    assert "no such user" in server.log()
