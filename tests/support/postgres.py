"""A throw-away PostgreSQL server for tests: initdb and pg_ctl from Debian's `postgresql`
package, in a temporary directory, on a free loopback port, with its Unix socket in the
same directory. One server per test session; each test gets a fresh database.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` account
(runuser). When the binaries are missing this fails loudly with how to install them:
CI installs them (scripts/install-test-deps), so a missing server is a setup error, never
a reason to skip.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support.server import free_port, wait_for

_INSTALL = "install Debian's postgresql package (scripts/install-test-deps does)"
_counter = itertools.count(1)


def bin_dir() -> Path:
    """The newest /usr/lib/postgresql/N/bin with initdb in it."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise RuntimeError(f"PostgreSQL server binaries not found: {_INSTALL}")
    return Path(found[-1]).parent


def _as_owner(args: list[str]) -> list[str]:
    """Run a server command as `postgres` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@dataclass
class PgServer:
    """A running PostgreSQL cluster; `dsn(name)` is a libpq URL for one database in it."""

    root: Path
    port: int
    bin: Path
    user: str = "posthorn"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        run = _as_owner(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"]
        )  # fmt: skip
        done = subprocess.run(run, capture_output=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c max_connections=200 -c shared_buffers=32MB"
        )
        start = _as_owner(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
             "-o", options, "-w", "-t", "60", "start"]
        )  # fmt: skip
        done = subprocess.run(start, capture_output=True, timeout=90)
        if done.returncode:
            raise RuntimeError(f"pg_ctl start failed: {self.log()}")
        wait_for(self._accepting, 30, f"PostgreSQL on port {self.port}")
        return self

    def _accepting(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop = _as_owner(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        )
        subprocess.run(stop, capture_output=True, timeout=60)

    def psql(self, database: str, sql: str) -> str:
        """Run SQL through psql (a real client) and return its unaligned output."""
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.dsn(database), "-c", sql],
            capture_output=True, timeout=60,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"psql: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.dsn(name)


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    """Start a cluster in a temp dir; stop and remove it afterwards."""
    binaries = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="posthorn-pg-"))
    # The postgres account must be able to reach its directory inside the temp dir.
    Path(root).chmod(0o755)
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")  # KeyError with a clear name if the account is missing
    server = PgServer(root, free_port(), binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
