"""The SMTP service on asyncio: accept connections and drive each one's conversation.

Owns: listening sockets, the connection limit, the per-connection loop that moves bytes
between the socket and the server core (`next_event` / `read` / `session.handle` /
`write(conn.send(reply))`), timeouts (RFC 5321 section 4.5.3.2), flushing pipelined
replies together (RFC 2920 section 3.2), the client's host name, and the connect and
disconnect log lines. Does not own protocol rules or policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket

from posthorn import log
from posthorn.receive.session import Session, SessionContext
from posthorn.smtp import events as ev
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ServerConnection, State

__all__ = ["Listener", "parse_listen"]

_log = log.get("smtpd")
_READ_SIZE = 65536


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port). Raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _client_name(address: str, enabled: bool) -> str:
    """The client's host name for Received headers; '' when unknown."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.is_loopback:
        return "localhost"
    if not enabled:
        return ""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(5):
            name, _ = await loop.getnameinfo((address, 0), socket.NI_NAMEREQD)
    except (OSError, TimeoutError):
        return ""
    return str(name)


class Listener:
    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        smtp = ctx.config.smtp
        self.limits = ContentLimits(
            max_size=smtp.max_message_size,
            max_line=smtp.max_text_line,
            bare_eol=smtp.bare_line_endings,
            reject_nul=smtp.reject_nul,
        )
        self.active = 0
        self.servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, address: str) -> asyncio.Server:
        host, port = parse_listen(address)
        server = await asyncio.start_server(
            self._accept, host, port, reuse_address=True, backlog=1024, limit=_READ_SIZE
        )
        self.servers.append(server)
        _log.info("listening on %s", address)
        return server

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.active += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.active -= 1
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        address = str(peer[0])
        hostname = self.ctx.config.server.hostname
        if self.active > self.ctx.config.server.max_connections:
            _log.warning("connection limit reached; refusing [%s]", address)
            writer.write(Reply(421, "4.7.0", (f"{hostname} Too many connections",)).to_bytes())
            await self._close(writer)
            return
        name = await _client_name(address, self.ctx.config.smtp.reverse_dns)
        session = Session(self.ctx, address, name)
        _log.info("connect from %s", session.peer)
        conn = ServerConnection(
            self.ctx.caps, self.limits, max_command_line=self.ctx.config.smtp.max_command_line
        )
        try:
            await self._converse(conn, session, reader, writer)
        except (ConnectionError, OSError) as exc:
            _log.info("lost connection from %s: %s", session.peer, exc)
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                writer.write(Reply(421, "4.3.2", (f"{hostname} Shutting down",)).to_bytes())
            raise
        finally:
            session.abort()
            await self._close(writer)
            stats = " ".join(f"{k}={v}" for k, v in session.counts.items())
            _log.info("disconnect from %s %s", session.peer, stats)

    async def _converse(
        self,
        conn: ServerConnection,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        smtp = self.ctx.config.smtp
        out = bytearray(conn.send(session.greeting()))
        while True:
            event = conn.next_event()
            if event is ev.Wait.NEED_DATA:
                if out:
                    # RFC 2920 section 3.2: replies to pipelined commands go out together,
                    # once no further complete command is buffered.
                    writer.write(out)
                    out = bytearray()
                    await writer.drain()
                timeout = smtp.data_timeout if conn.state is State.DATA else smtp.idle_timeout
                try:
                    async with asyncio.timeout(timeout):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    reply = Reply(421, "4.4.2", (f"{session.hostname} Error: timeout exceeded",))
                    writer.write(conn.send(reply))
                    _log.info("timeout after %s from %s", conn.state.name, session.peer)
                    return
                conn.receive_data(data)
                continue
            if isinstance(event, ev.ConnectionClosed):
                if conn.state in (State.DATA, State.BDAT):
                    _log.info("lost connection after %s from %s", conn.state.name, session.peer)
                return
            answer = await session.handle(event)
            if answer is None:
                continue
            out += conn.send(answer)
            if conn.state is State.CLOSED:
                writer.write(out)
                await writer.drain()
                return

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
            async with asyncio.timeout(5):
                await writer.wait_closed()
