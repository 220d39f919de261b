"""The SMTP service on asyncio: accept connections and drive each one's conversation.

Owns: listening sockets (plain, or implicit TLS as RFC 8314 section 3.3 describes), the
connection limits (through the shared `ClientLimits`), the per-connection loop that moves
bytes between the socket and the server core (`next_event` / `read` / `session.handle` /
`write(conn.send(reply))`), the TLS upgrade after the 220 to STARTTLS (RFC 3207), idle and
whole-session timeouts (RFC 5321 section 4.5.3.2; slowloris), flushing pipelined replies
together (RFC 2920 section 3.2), the client's host name, and the connect and disconnect
log lines. Does not own protocol rules or policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl

from posthorn import log
from posthorn.receive.limits import ClientLimits
from posthorn.receive.session import Session, SessionContext
from posthorn.receive.tls import describe
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


def _discard_read_buffer(reader: asyncio.StreamReader) -> int:
    """Drop plaintext the stream has read ahead but nobody has consumed yet.

    asyncio's StreamWriter.start_tls keeps the reader's buffer, so bytes a client sent in
    clear right after STARTTLS would come out of the reader as if they had arrived over
    TLS: the CVE-2011-0411 injection, one layer below the core's own discard.
    """
    buffer = getattr(reader, "_buffer", None)
    if not isinstance(buffer, bytearray):
        return 0
    size = len(buffer)
    buffer.clear()
    return size


class Listener:
    def __init__(
        self,
        ctx: SessionContext,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        kind: str = "smtp",
    ) -> None:
        if implicit_tls and tls is None:
            raise ValueError("an implicit-TLS listener needs a TLS context")
        self.ctx = ctx
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.kind = kind
        self.handshake_timeout = ctx.config.tls.handshake_timeout
        self.client_limits = ctx.limits or ClientLimits(
            ctx.config.limits, ctx.config.auth, max_connections=ctx.config.server.max_connections
        )
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
        tls_args: dict[str, object] = {}
        if self.implicit_tls:
            # RFC 8314 section 3.3: TLS from the first byte; SMTP starts after the handshake.
            tls_args = {"ssl": self.tls, "ssl_handshake_timeout": self.handshake_timeout}
        server = await asyncio.start_server(
            self._accept,
            host,
            port,
            reuse_address=True,
            backlog=1024,
            limit=_READ_SIZE,
            **tls_args,  # type: ignore[arg-type]
        )
        self.servers.append(server)
        _log.info("listening on %s (%s)", address, self.kind)
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
        refusal = self.client_limits.connect(address, hostname)
        if refusal is not None:
            _log.warning("%s; refusing [%s]", refusal.lines[0], address)
            with contextlib.suppress(OSError):
                writer.write(refusal.to_bytes())
            await self._close(writer)
            return
        try:
            await self._session(reader, writer, address)
        finally:
            self.client_limits.disconnect(address)

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str
    ) -> None:
        hostname = self.ctx.config.server.hostname
        name = await _client_name(address, self.ctx.config.smtp.reverse_dns)
        session = Session(self.ctx, address, name)
        _log.info("connect from %s (%s)", session.peer, self.kind)
        if self.implicit_tls:
            session.tls_started(describe(writer.get_extra_info("ssl_object")))
        conn = ServerConnection(
            session.caps, self.limits, max_command_line=self.ctx.config.smtp.max_command_line
        )
        conn.tls = bool(session.tls)
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.config.limits.session_timeout
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
                # A client that trickles bytes resets the idle timer; the session's own
                # deadline is what stops it (slowloris).
                remaining = deadline - loop.time()
                try:
                    async with asyncio.timeout(max(0.0, min(timeout, remaining))):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    which = "timeout" if timeout < remaining else "session time limit"
                    text = f"{session.hostname} Error: {which} exceeded"
                    writer.write(conn.send(Reply(421, "4.4.2", (text,))))
                    _log.info("%s after %s from %s", which, conn.state.name, session.peer)
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
            if isinstance(event, ev.StartTls) and answer.code == 220:
                writer.write(out)
                out = bytearray()
                await self._start_tls(conn, session, reader, writer)

    async def _start_tls(
        self,
        conn: ServerConnection,
        session: Session,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Upgrade after the 220 is on the wire; the core has dropped its own buffer."""
        assert self.tls is not None
        await writer.drain()
        dropped = _discard_read_buffer(reader)
        if dropped:
            _log.warning(
                "%s: discarded %d octets sent before the TLS handshake", session.peer, dropped
            )
        await writer.start_tls(self.tls, ssl_handshake_timeout=self.handshake_timeout)
        session.tls_started(describe(writer.get_extra_info("ssl_object")))
        conn.caps = session.caps
        conn.authenticated = False

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
            async with asyncio.timeout(5):
                await writer.wait_closed()
