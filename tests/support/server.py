"""Real Posthorn servers for tests: a subprocess on a free loopback port, its own data dir.

Tests talk to it with real clients (smtplib, swaks) and look at what it wrote. Nothing
here sleeps for a fixed time: every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import posthorn

SRC = Path(posthorn.__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    """The environment for posthorn subprocesses: this checkout's code first."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(SRC), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out.pop("POSTHORN_CONFIG", None)
    return out


def posthorn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "posthorn", *args]


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def wait_log(server: Server, pattern: str, count: int = 1, timeout: float = 20.0) -> list[str]:
    """Lines of the server's log matching `pattern` (a regex), once there are `count`."""
    regex = re.compile(pattern)

    def found() -> list[str]:
        lines = [line for line in server.log().splitlines() if regex.search(line)]
        return lines if len(lines) >= count else []

    wait_for(found, timeout, f"{count} log line(s) /{pattern}/\n{server.log()}")
    return found()


@dataclass
class Server:
    """A running `posthorn serve` process."""

    root: Path
    config_text: str = ""
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_path(self) -> Path:
        return self.root / "posthorn.toml"

    @property
    def log_path(self) -> Path:
        return self.root / "posthorn.log"

    def start(self) -> Server:
        self.root.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(self.config_text)
        if "hostname" not in text:
            text = '[server]\nhostname = "mx.test"\n' + text if "[server]" not in text else text
        self.config_path.write_text(text)
        args = posthorn_cmd(
            "serve",
            "--config", str(self.config_path),
            "--data-dir", str(self.data_dir),
            "--listen", f"{self.host}:{self.port}",
            *self.extra_args,
        )  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env())
        wait_for(self._accepting, what=f"server on port {self.port}\n{self.log()}")
        return self

    def _accepting(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
            return True
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP(self.host, self.port, local_hostname="client.test", timeout=10)

    def maildir(self, user: str) -> Path:
        return self.data_dir / "mail" / user / "Maildir"

    def delivered(self, user: str) -> list[Path]:
        new = self.maildir(user) / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def wait_delivered(self, user: str, count: int = 1, timeout: float = 15.0) -> list[Path]:
        def enough() -> list[Path] | None:
            found = self.delivered(user)
            return found if len(found) >= count else None

        wait_for(enough, timeout, f"{count} message(s) for {user}\n{self.log()}")
        return self.delivered(user)

    def cli(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a posthorn subcommand against this server's config and data dir."""
        cmd = posthorn_cmd(
            *args, "--config", str(self.config_path), "--data-dir", str(self.data_dir)
        )
        return subprocess.run(cmd, input=input, capture_output=True, env=env(), timeout=60)


@contextlib.contextmanager
def running(root: Path, config_text: str = "", *extra_args: str) -> Iterator[Server]:
    server = Server(root, config_text, extra_args=extra_args).start()
    try:
        yield server
    finally:
        server.stop()
