"""`posthorn config check`: errors exit 78 (EX_CONFIG) with a message naming the problem."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.server import Server, env, posthorn_cmd
from support.tls_cert import self_signed


def check(config: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    cmd = posthorn_cmd("config", "check", "--config", str(config), "--data-dir", str(data_dir))
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=60)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "posthorn.toml"
    path.write_text('[server]\nhostname = "mx.example.org"\n' + text)
    return path


def test_running_servers_config_is_ok(server: Server) -> None:
    result = check(server.config_path, server.data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"config ok; data_dir={server.data_dir}\n"
    # Warnings do not fail the check; a test host name is not fully qualified.
    assert "warning: server.hostname 'mx.test'" not in result.stderr  # it has a dot


def test_new_data_dir_is_fine(tmp_path: Path) -> None:
    result = check(_config(tmp_path, ""), tmp_path / "not" / "yet")
    assert (result.returncode, result.stderr) == (0, "")


def test_world_writable_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    result = check(_config(tmp_path, ""), data)
    assert result.returncode == 78
    assert f"error: data directory {data} is writable by everyone (mode 777)" in result.stderr
    assert "1 error(s)" in result.stderr


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("x")
    result = check(_config(tmp_path, ""), data)
    assert result.returncode == 78
    assert f"data directory {data} is not a directory" in result.stderr


def test_queue_database_that_is_not_sqlite(tmp_path: Path) -> None:
    (tmp_path / "data" / "queue").mkdir(parents=True, mode=0o700)
    (tmp_path / "data").chmod(0o700)
    (tmp_path / "data" / "queue" / "queue.db").write_bytes(b"not a database at all")
    result = check(_config(tmp_path, ""), tmp_path / "data")
    assert result.returncode == 78
    assert "is not an SQLite database" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[local]\nmaildir = "/srv/mail/Maildir"\n', "lacks {user}"),
        ('[local]\nmaildir = "{home}/{user}"\n', "bad placeholder 'home'"),
        ('[local]\nmaildir = "mail/{user}"\n', "is not an absolute path"),
        (
            '[local]\nmbox = "/var/mail/everyone"\n',
            "local.mbox '/var/mail/everyone' lacks {user}: all users would share one mailbox",
        ),
        (
            '[local]\nmbox = "{home}/{user}.mbox"\n',
            "local.mbox '{home}/{user}.mbox': bad placeholder 'home'",
        ),
        ('[local]\nmbox = "{user}"\n', "local.mbox '{user}' is not an absolute path"),
        ('[local]\nmbox = "/var/mail/{user}/"\n', "names a directory, not a file"),
        ('listen = ["localhost"]\n', "server.listen: listen address must be HOST:PORT"),
        ('[submit]\nca_file = "/no/such.pem"\n', "submit.ca_file /no/such.pem: no such file"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, message: str) -> None:
    # `text` follows the [server] table: a bare key belongs to it.
    result = check(_config(tmp_path, text), tmp_path / "data")
    assert result.returncode == 78, result.stderr
    assert message in result.stderr


def test_submit_files(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path / "tls")
    password = tmp_path / "password"
    password.write_text("secret\n")
    password.chmod(0o600)
    text = (
        f'[submit]\nca_file = "{cert}"\nauth_user = "alice"\nauth_password_file = "{password}"\n'
    )
    assert check(_config(tmp_path, text), tmp_path / "data").returncode == 0
    password.chmod(0o644)
    result = check(_config(tmp_path, text), tmp_path / "data")
    assert result.returncode == 78
    assert f"{password} is readable by others; make it mode 0600" in result.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    password.chmod(0o600)
    result = check(_config(tmp_path, text.replace(str(cert), str(not_pem))), tmp_path / "data")
    assert result.returncode == 78
    assert "no PEM certificates" in result.stderr


def test_host_name(tmp_path: Path) -> None:
    config = tmp_path / "posthorn.toml"
    config.write_text('[server]\nhostname = "bad_name!"\n')
    result = check(config, tmp_path / "data")
    assert result.returncode == 78
    assert "server.hostname 'bad_name!' is not a domain name" in result.stderr
    config.write_text('[server]\nhostname = "mailhost"\n')
    result = check(config, tmp_path / "data")
    assert result.returncode == 0
    assert "warning: server.hostname 'mailhost' is not fully qualified" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server\n", "posthorn.toml: "),
        ("[smtp]\nmax_mesage_size = 1\n", "smtp.max_mesage_size: unknown key"),
        ('[submit]\nstarttls = "maybe"\n', "submit.starttls must be one of auto, require, never"),
    ],
)
def test_config_errors_exit_78(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "posthorn.toml"
    config.write_text(text)
    result = check(config, tmp_path / "data")
    assert result.returncode == 78
    assert message in result.stderr


def test_queue_readable_by_others_is_a_warning(tmp_path: Path) -> None:
    queue = tmp_path / "data" / "queue"
    queue.mkdir(parents=True)
    os.chmod(tmp_path / "data", 0o755)
    database = queue / "queue.db"
    database.write_bytes(b"SQLite format 3\x00" + bytes(84))
    database.chmod(0o644)
    result = check(_config(tmp_path, ""), tmp_path / "data")
    assert result.returncode == 0
    assert f"warning: queue database {database} is readable by others (mode 644)" in result.stderr


def test_mbox_spool_directory(tmp_path: Path) -> None:
    # The directory above the users' mbox files is the server's to write, nobody else's.
    spool = tmp_path / "spool"
    spool.mkdir()
    spool.chmod(0o700)
    # {user} need not start a path component: the spool is still the directory above.
    text = f'[local]\nmailbox_format = "mbox"\nmbox = "{spool}/mbox.{{user}}"\n'
    result = check(_config(tmp_path, text), tmp_path / "data")
    assert (result.returncode, result.stderr) == (0, "")
    spool.chmod(0o777)
    result = check(_config(tmp_path, text), tmp_path / "data")
    assert result.returncode == 78
    assert f"error: mail directory {spool} is writable by everyone (mode 777)" in result.stderr
