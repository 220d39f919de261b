"""SMTP over standard input and output (`sendmail -bs`): the server core without a socket.

Owns: the `Wire` over two file descriptors, on which the listener's conversation loop
(`conversation.py`) runs with the same `ServerConnection` and `Session`. The session is a
local one: trusted to send anywhere, as a local user's sendmail is, and its messages'
Received lines name the user id. Does not own protocol rules or policy.
"""

from __future__ import annotations

import asyncio
import os

from posthorn.receive.context import SessionContext
from posthorn.receive.conversation import Timeouts, converse
from posthorn.receive.session import Session
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.server import ServerConnection

__all__ = ["serve_stdio"]

_READ_SIZE = 65536


class _Stdio:
    """The Wire over two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    async def read(self, within: float) -> bytes:
        """Wait until the input is readable, then read what is there (b"" at its end)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            loop.add_reader(self.read_fd, wake)
        except (OSError, ValueError):
            # A regular file (input redirected from one) cannot be polled, and a read of
            # one never blocks.
            return os.read(self.read_fd, _READ_SIZE)
        try:
            async with asyncio.timeout(within):
                await ready
        finally:
            loop.remove_reader(self.read_fd)
        return os.read(self.read_fd, _READ_SIZE)

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    async def drain(self) -> None:
        return None

    async def begin_tls(self) -> str:
        raise RuntimeError("no STARTTLS on standard input and output")


async def serve_stdio(
    ctx: SessionContext,
    limits: ContentLimits,
    *,
    uid: int,
    read_fd: int = 0,
    write_fd: int = 1,
) -> Session:
    """Run one SMTP session on the descriptors; returns it (its counts say what was sent)."""
    session = Session(ctx, "", "")
    session.trusted = True
    session.local_uid = uid
    smtp = ctx.config.smtp
    conn = ServerConnection(ctx.caps, limits, max_command_line=smtp.max_command_line)
    try:
        await converse(
            conn,
            session,
            _Stdio(read_fd, write_fd),
            Timeouts(smtp.idle_timeout, smtp.data_timeout),
        )
    except OSError:  # the other side went away (EPIPE): nothing left to answer
        pass
    finally:
        session.abort()
    return session
