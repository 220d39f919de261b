"""The SMTP service on asyncio: accept connections and run each one's conversation.

Owns: listening sockets (plain, or implicit TLS as RFC 8314 section 3.3 describes), the
connection limits (through the shared `ClientLimits`), one `Channel` and one task per
connection, the client's host name, the connect and disconnect log lines, and a 421 to
every client when the server shuts down. Does not own the conversation loop
(`conversation.py`), protocol rules or policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from posthorn import log
from posthorn.address import parse_ip
from posthorn.receive.channel import Channel
from posthorn.receive.context import SessionContext
from posthorn.receive.conversation import Timeouts, converse
from posthorn.receive.limits import ClientLimits
from posthorn.receive.session import Session
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ServerConnection

__all__ = ["Listener", "parse_listen"]

_log = log.get("smtpd")


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port). Raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _client_name(address: str, enabled: bool) -> str:
    """The client's host name for Received headers; '' when unknown."""
    ip = parse_ip(address)
    if ip is None:
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


def content_limits(ctx: SessionContext) -> ContentLimits:
    smtp = ctx.config.smtp
    return ContentLimits(
        max_size=smtp.max_message_size,
        max_line=smtp.max_text_line,
        bare_eol=smtp.bare_line_endings,
        reject_nul=smtp.reject_nul,
    )


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
        self.limits = content_limits(ctx)
        self.servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def start(self, address: str, *, reuse_port: bool = False) -> asyncio.AbstractServer:
        host, port = parse_listen(address)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Channel(self._accepted, self.tls, self.handshake_timeout),
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=1024,
            # RFC 8314 section 3.3: TLS from the first byte; SMTP starts after the handshake.
            ssl=self.tls if self.implicit_tls else None,
            ssl_handshake_timeout=self.handshake_timeout if self.implicit_tls else None,
        )
        self.servers.append(server)
        _log.info("listening on %s (%s)", address, self.kind)
        return server

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()

    def _accepted(self, channel: Channel) -> None:
        address = channel.peername[0]
        refusal = self.client_limits.connect(address, self.ctx.config.server.hostname)
        if refusal is not None:
            _log.warning("%s; refusing [%s]", refusal.lines[0], address)
            channel.write(refusal.to_bytes())
            channel.close()
            return
        task = asyncio.get_running_loop().create_task(self._run(channel, address))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, channel: Channel, address: str) -> None:
        try:
            await self._session(channel, address)
        finally:
            self.client_limits.disconnect(address)
            channel.close()

    async def _session(self, channel: Channel, address: str) -> None:
        config = self.ctx.config
        name = await _client_name(address, config.smtp.reverse_dns)
        session = Session(self.ctx, address, name)
        _log.info("connect from %s (%s)", session.peer, self.kind)
        if self.implicit_tls:
            session.tls_started(channel.tls_description())
        conn = ServerConnection(
            session.caps, self.limits, max_command_line=config.smtp.max_command_line
        )
        conn.tls = bool(session.tls)
        limits = Timeouts(
            config.smtp.idle_timeout, config.smtp.data_timeout, config.limits.session_timeout
        )
        try:
            await converse(conn, session, channel, limits)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            _log.info("lost connection from %s: %s", session.peer, exc)
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                text = f"{config.server.hostname} Shutting down"
                channel.write(Reply(421, "4.3.2", (text,)).to_bytes())
            raise
        finally:
            session.abort()
            if channel.discarded:
                _log.warning(
                    "%s: discarded %d octets sent before the TLS handshake",
                    session.peer,
                    channel.discarded,
                )
            # Postfix's per-command counts; none (and no trailing blank) for a silent client.
            stats = "".join(f" {k}={v}" for k, v in session.counts.items())
            _log.info("disconnect from %s%s", session.peer, stats)
