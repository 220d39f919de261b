"""SMTP over standard input and output (`sendmail -bs`): the server core without a socket.

Owns: the loop that moves bytes between two file descriptors and the same
`ServerConnection` and `Session` the listener uses (`next_event` / read / `handle` /
write), flushing replies once no further command is buffered (RFC 2920 section 3.2),
and the idle timeout (RFC 5321 section 4.5.3.2). The session is a local one: trusted to
send anywhere, as a local user's sendmail is, and its messages' Received lines name the
user id. Does not own protocol rules or policy.
"""

from __future__ import annotations

import asyncio
import os

from posthorn.receive.session import Session, SessionContext
from posthorn.smtp import events as ev
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ServerConnection, State

__all__ = ["serve_stdio"]

_READ_SIZE = 65536


async def _read(fd: int) -> bytes:
    """Wait until `fd` is readable, then read what is there (b"" at end of input)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    try:
        loop.add_reader(fd, wake)
    except (OSError, ValueError):
        # A regular file (input redirected from one) cannot be polled, and a read of
        # one never blocks.
        return os.read(fd, _READ_SIZE)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return os.read(fd, _READ_SIZE)


def _write(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    out = bytearray(conn.send(session.greeting()))
    try:
        while True:
            event = conn.next_event()
            if event is ev.Wait.NEED_DATA:
                if out:
                    _write(write_fd, out)
                    out = bytearray()
                timeout = smtp.data_timeout if conn.state is State.DATA else smtp.idle_timeout
                try:
                    async with asyncio.timeout(timeout):
                        data = await _read(read_fd)
                except TimeoutError:
                    reply = Reply(421, "4.4.2", (f"{session.hostname} Error: timeout exceeded",))
                    _write(write_fd, conn.send(reply))
                    return session
                conn.receive_data(data)
                continue
            if isinstance(event, ev.ConnectionClosed):
                return session
            answer = await session.handle(event)
            if answer is None:
                continue
            out += conn.send(answer)
            if conn.state is State.CLOSED:
                _write(write_fd, out)
                return session
    except OSError:  # the other side went away (EPIPE): nothing left to answer
        return session
    finally:
        session.abort()
