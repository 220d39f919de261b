"""One outgoing SMTP connection on asyncio, driven through the sans-I/O client core.

Owns: connecting to one address (or Unix socket), the greeting, EHLO with HELO fallback
(or LHLO for LMTP, RFC 2033), STARTTLS by
policy (RFC 3207), AUTH PLAIN/LOGIN toward relay hosts (RFC 4954), reading replies and
writing commands under the timeouts of RFC 5321 section 4.5.3.2, and QUIT. Does not
own a mail transaction (`smtp_transaction.py`), which host to try, what a message needs
from a peer (SIZE, 8BITMIME, SMTPUTF8: see `remote.py`) or outcomes for the queue.

Raises `Broken` (with a 4xx reply that says why) when the connection cannot be used any
more: refused, timed out, closed, a garbage reply, a 4xx greeting. A 5xx greeting is a
`Broken` with `permanent` set. Nothing else escapes: OS and TLS errors become `Broken`.
`ResetFailed` (a `Broken`) says a reused connection did not answer its RSET with 250.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import time
from dataclasses import dataclass

from posthorn import log
from posthorn.outcome import from_oserror
from posthorn.smtp.client import BadReply, ClientConnection, ClientWait, Closed
from posthorn.smtp.extensions import Capabilities, parse_ehlo
from posthorn.smtp.reply import Reply
from posthorn.wire import StreamWire

__all__ = ["Broken", "Peer", "ResetFailed", "SmtpConnection", "Timeouts"]

_log = log.get("smtp")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per step; defaults are RFC 5321 section 4.5.3.2's minimums."""

    connect: float = 30.0
    greeting: float = 300.0
    command: float = 300.0
    mail: float = 300.0
    rcpt: float = 300.0
    data: float = 120.0
    data_block: float = 180.0
    data_end: float = 600.0


@dataclass(frozen=True, slots=True)
class Peer:
    host: str  # the MX or relay host name (or the address itself)
    address: str
    port: int
    path: str = ""  # a Unix socket to connect to instead of address:port (LMTP)

    @property
    def label(self) -> str:
        """Postfix's relay= form: `mx1.example.org[192.0.2.1]:25`, or `host[/path]`."""
        if self.path:
            return f"{self.host}[{self.path}]"
        return f"{self.host}[{self.address}]:{self.port}"


class Broken(Exception):
    """The connection is unusable; `reply` is the diagnostic (4xx unless `permanent`)."""

    def __init__(self, reply: Reply, permanent: bool = False) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.permanent = permanent


class ResetFailed(Broken):
    """A reused connection refused or did not answer the RSET before the next
    transaction: it is closed, and the message goes over a new connection."""


def _broken(text: str, esc: str = "4.4.2") -> Broken:
    return Broken(Reply(451, esc, (text,)))


def _refused(peer: Peer, what: str, reply: Reply) -> Broken:
    """A peer's refusal at the host level: permanent for a 5xx, else temporary."""
    text = f"{peer.label} {what}: {reply}"
    if reply.is_permanent:
        return Broken(Reply(reply.code, "5.4.0", (text,)), permanent=True)
    return Broken(Reply(451, "4.4.0", (text,)))


class SmtpConnection:
    """A connected, greeted and introduced SMTP session with one peer."""

    def __init__(self, peer: Peer, wire: StreamWire) -> None:
        self.peer = peer
        self.wire = wire
        self.core = ClientConnection()
        self.caps = Capabilities()
        self.esmtp = False
        self.tls = ""
        self.transactions = 0
        self.used = False  # a transaction ran since EHLO: the next one begins with RSET
        self.idle_since = time.monotonic()
        self.closed = False

    # -- set-up ----------------------------------------------------------------------

    @classmethod
    async def open(cls, peer: Peer, timeouts: Timeouts) -> SmtpConnection:
        """Connect and read the greeting (RFC 5321 section 3.1). Raises Broken."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeouts.connect):
                if peer.path:
                    _, wire = await loop.create_unix_connection(StreamWire, peer.path)
                else:
                    _, wire = await loop.create_connection(StreamWire, peer.address, peer.port)
        except TimeoutError:
            raise _broken(f"connect to {peer.label} timed out", "4.4.1") from None
        except OSError as exc:
            reply = from_oserror(exc).reply
            reason = " ".join(reply.lines)  # the enhanced code goes in front once, not twice
            raise Broken(Reply(451, reply.esc, (f"connect to {peer.label}: {reason}",))) from None
        conn = cls(peer, wire)
        greeting = await conn.read_reply(timeouts.greeting)
        if greeting.code != 220:
            conn.abort()
            # RFC 5321 section 3.1: 554 instead of 220 means no service here; a 4xx
            # greeting means not now. Either way, the next address may do better.
            raise _refused(peer, "refused to talk to me", greeting)
        return conn

    async def hello(self, name: str, seconds: float) -> None:
        """EHLO, or HELO when the peer refuses EHLO (RFC 5321 section 3.2)."""
        reply = await self.command(f"EHLO {name}", seconds)
        if reply.code == 250:
            self.esmtp = True
            self.caps = parse_ehlo(reply.lines)
            return
        if reply.code == 421:
            raise Broken(Reply(451, "4.4.0", (f"{self.peer.label} said {reply}",)))
        reply = await self.command(f"HELO {name}", seconds)
        if reply.code != 250:
            raise _refused(self.peer, "refused HELO", reply)
        self.esmtp = False
        self.caps = Capabilities()

    async def lhlo(self, name: str, seconds: float) -> None:
        """LHLO, LMTP's only greeting: there is no HELO to fall back to (RFC 2033 4.1)."""
        reply = await self.command(f"LHLO {name}", seconds)
        if reply.code != 250:
            raise _refused(self.peer, "refused LHLO", reply)
        self.esmtp = True
        self.caps = parse_ehlo(reply.lines)

    async def starttls(
        self, context: ssl.SSLContext, server_name: str | None, seconds: float
    ) -> None:
        """STARTTLS (RFC 3207); the caller says EHLO again afterwards. Raises Broken."""
        reply = await self.command("STARTTLS", seconds)
        if reply.code != 220:
            raise Broken(Reply(451, "4.7.4", (f"{self.peer.label} refused STARTTLS: {reply}",)))
        self.core.start_tls()
        try:
            ssl_object = await self.wire.start_tls(
                context, server_side=False, server_hostname=server_name, handshake_timeout=seconds
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.abort()
            raise Broken(
                Reply(451, "4.7.5", (f"TLS with {self.peer.label} failed: {exc}",))
            ) from None
        if ssl_object is not None:
            self.tls = f"{ssl_object.version()} with cipher {(ssl_object.cipher() or ('?',))[0]}"

    async def authenticate(self, user: str, password: str, seconds: float) -> None:
        """AUTH PLAIN, else LOGIN (RFC 4954). Raises Broken with 4.7.8 on refusal."""
        if "PLAIN" in self.caps.auth:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            reply = await self.command(f"AUTH PLAIN {token}", seconds, label="AUTH")
        elif "LOGIN" in self.caps.auth:
            reply = await self.command("AUTH LOGIN", seconds, label="AUTH")
            for secret in (user, password):
                if reply.code != 334:
                    break
                encoded = base64.b64encode(secret.encode()).decode("ascii")
                reply = await self.command(encoded, seconds, label="AUTH")
        else:
            text = f"{self.peer.label} offers no AUTH mechanism we speak ({self.caps.auth})"
            raise Broken(Reply(451, "4.7.8", (text,)))
        if reply.code != 235:
            raise Broken(
                Reply(451, "4.7.8", (f"authentication failed at {self.peer.label}: {reply}",))
            )

    # -- replies ---------------------------------------------------------------------

    async def read_reply(self, seconds: float) -> Reply:
        """The next reply; raises Broken on timeout, close or garbage."""
        while True:
            item = self.core.next_reply()
            if item is ClientWait.NEED_DATA:
                try:
                    data = await self.wire.read(seconds)
                except TimeoutError:
                    self.abort()
                    raise _broken(f"timeout waiting for a reply from {self.peer.label}") from None
                except OSError as exc:
                    self.abort()
                    raise _broken(f"lost connection with {self.peer.label}: {exc}") from None
                self.core.receive_data(data)
                continue
            if isinstance(item, Closed):
                self.abort()
                raise _broken(f"lost connection with {self.peer.label} (peer closed)")
            if isinstance(item, BadReply):
                self.abort()
                raise _broken(f"bad reply from {self.peer.label}: {item.reason}", "4.5.0")
            assert not isinstance(item, ClientWait)
            _log.debug("%s: S: %s", self.peer.label, item.reply)
            return item.reply

    async def write(self, data: bytes, seconds: float) -> None:
        try:
            self.wire.write(data)
            if self.wire.congested:
                # Wait (with the deadline) only when the peer is not keeping up.
                async with asyncio.timeout(seconds):
                    await self.wire.drain()
        except TimeoutError:
            self.abort()
            raise _broken(f"timeout sending to {self.peer.label}") from None
        except OSError as exc:
            self.abort()
            raise _broken(f"lost connection with {self.peer.label}: {exc}") from None

    async def command(self, line: str, seconds: float, label: str | None = None) -> Reply:
        shown = "AUTH ..." if (label == "AUTH") else line
        _log.debug("%s: C: %s", self.peer.label, shown)
        await self.write(self.core.send(line, label), seconds)
        return await self.read_reply(seconds)

    @property
    def usable(self) -> bool:
        """Still open as far as we know without asking (a peer that hung up while the
        connection was idle shows as EOF here, or fails the RSET that the next
        transaction begins with, before any content is sent)."""
        return not self.closed and not self.wire.at_eof

    async def quit(self, seconds: float = 10.0) -> None:
        if self.closed:
            return
        with contextlib.suppress(Broken):
            await self.command("QUIT", seconds)
        self.abort()

    def abort(self) -> None:
        """Close without QUIT (after an error, or when the peer is gone)."""
        if not self.closed:
            self.closed = True
            self.wire.close()
