"""The servers a benchmark run compares, each started fresh on loopback in a temp dir.

Posthorn (`posthorn serve`, hold mode for the accept figure), a throw-away Postfix
instance (`postfix -c DIR`, never the system one; HOLD for every client, or relaying to a
sink), aiosmtpd with an fsync-per-message handler, and Postfix's smtp-sink. Each is a
context manager that yields a `Running` with the port and the pids to account.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Running:
    name: str
    port: int
    pids: list[int]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def posthorn(
    work: Path, *, hold: bool, config: str = "", name: str = "posthorn", workers: int = 1
) -> Iterator[Running]:
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    (work / "posthorn.toml").write_text(
        f'[server]\nhostname = "posthorn.bench"\nmax_connections = 5000\nworkers = {workers}\n'
        + config
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    args = [sys.executable, "-m", "posthorn", "serve", "--config", str(work / "posthorn.toml"),
            "--data-dir", str(work / "data"), "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    if hold:
        args.append("--hold")
    log = (work / "posthorn.log").open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
    try:
        wait_port(port, proc)
        yield Running(name, port, [proc.pid])
    finally:
        _stop(proc)


_POSTFIX_MAIN = """\
compatibility_level = 3.6
config_directory = {dir}/conf
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_recipient_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
biff = no
default_process_limit = 250
smtp_dns_support_level = disabled
{extra}
"""


def _postfix(work: Path, *args: str) -> None:
    # Postfix logs its own fatal errors to syslog unless stderr is a terminal: `script`
    # gives it one, so that a failure shows up in our output.
    command = " ".join(["postfix", "-c", str(work / "conf"), *args])
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, timeout=60
    )
    if done.returncode:
        raise RuntimeError(f"{command}: {done.stdout.decode(errors='replace').strip()}")


@contextlib.contextmanager
def postfix(work: Path, *, relay_to: int | None = None) -> Iterator[Running]:
    """Postfix holding all mail (accept-and-queue), or relaying everything to a sink."""
    if os.geteuid() != 0:
        raise RuntimeError("a throw-away Postfix instance needs root")
    port = free_port()
    (work / "conf").mkdir(parents=True, exist_ok=True)
    (work / "queue").mkdir(exist_ok=True)
    (work / "data").mkdir(exist_ok=True)
    shutil.chown(work / "data", "postfix")
    extra = (
        f"relayhost = [127.0.0.1]:{relay_to}\n" if relay_to
        else "smtpd_client_restrictions = static:HOLD\n"
    )  # fmt: skip
    (work / "conf" / "main.cf").write_text(_POSTFIX_MAIN.format(dir=work, extra=extra))
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    listener = f"127.0.0.1:{port} inet n - n - - smtpd"
    master = [
        listener if line.startswith("smtp ") and " inet " in line else line for line in master
    ]
    if not any(line.startswith("postlog") for line in master):
        master.append("postlog   unix-dgram n  -       n       -       1       postlogd")
    (work / "conf" / "master.cf").write_text("\n".join(master) + "\n")
    for path in (work, work / "conf"):
        path.chmod(0o755)
    _postfix(work, "start")
    try:
        wait_port(port)
        master_pid = int((work / "data" / "master.lock").read_text().split()[0])
        yield Running("postfix", port, [master_pid])
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _postfix(work, "stop")


@contextlib.contextmanager
def aiosmtpd(work: Path) -> Iterator[Running]:
    port = free_port()
    (work / "spool").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, str(HERE / "aiosmtpd_fsync.py"), str(port),
                             str(work / "spool")], stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield Running("aiosmtpd", port, [proc.pid])
    finally:
        _stop(proc)


@contextlib.contextmanager
def smtp_sink(work: Path, port: int | None = None) -> Iterator[Running]:
    port = port or free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield Running("smtp-sink", port, [proc.pid])
    finally:
        _stop(proc)
