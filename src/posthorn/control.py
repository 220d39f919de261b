"""The control socket: how operator commands reach a running server.

Owns: a Unix socket in the data directory (`control.sock`, mode 0600) that accepts one
line per connection and answers one line, and the client function that sends such a line.
Commands: `WAKE` (look at the queue now: after a flush, release or new local mail).
Queue changes themselves go straight to the store (which allows several processes); this
only makes the running server notice them without waiting for its next timer. Does not
own the queue or any command's effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

from posthorn import log

__all__ = ["ControlServer", "notify", "socket_path"]

_log = log.get("master")


def socket_path(data_dir: str | Path) -> Path:
    return Path(data_dir).absolute() / "control.sock"


def _address(data_dir: str | Path) -> str:
    """The socket's address: its path, or (when the path is longer than a Unix socket
    name may be) a Linux abstract name derived from it."""
    path = str(socket_path(data_dir))
    if len(path.encode()) < 100:
        return path
    return "\0posthorn-" + hashlib.sha256(path.encode()).hexdigest()[:32]


class ControlServer:
    def __init__(self, data_dir: str, handlers: dict[str, Callable[[str], str]]) -> None:
        self.path = socket_path(data_dir)
        self.address = _address(data_dir)
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._client, path=self.address)
        if not self.address.startswith("\0"):
            os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                line = (await reader.readline()).decode("utf-8", "replace").strip()
            verb, _, arg = line.partition(" ")
            handler = self.handlers.get(verb.upper())
            answer = handler(arg) if handler else f"ERROR unknown command {verb!r}"
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError) as exc:
            _log.warning("control connection failed: %s", exc)
        finally:
            writer.close()


def notify(data_dir: str | Path, line: str, timeout: float = 5.0) -> str | None:
    """Send one command to a running server; None when no server is listening."""
    address = _address(data_dir)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(line.encode() + b"\n")
            return sock.makefile("rb").readline().decode("utf-8", "replace").strip()
    except OSError:
        return None
