"""The LMTP transport: local mailboxes kept by a mailbox server (Dovecot, Cyrus) that
speaks LMTP (RFC 2033), over TCP or a Unix socket.

Owns: the grammar of the target (`lmtp:HOST:PORT`, `lmtp:[ADDRESS]:PORT`,
`lmtp:unix:/path`, Postfix's notation), one LMTP session per delivery through the same
client core and driver as SMTP (LHLO, MAIL, RCPT..., DATA), what the message needs from
the server (8BITMIME or a downgrade, SMTPUTF8, SIZE), reuse of idle connections, and
turning the reply each recipient gets after the final dot into its own `Outcome`
(RFC 2033 section 4.2: one message, several mailboxes, one verdict per mailbox). Does
not own routing (the runner hands it `Mailbox` routes) or retries.

Never raises for the server's or the network's trouble: everything becomes an outcome.
`parse_lmtp_target` raises `ValueError` for text it cannot read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from posthorn import log
from posthorn.config import SmtpClientConfig
from posthorn.delivery.pool import ConnectionCache
from posthorn.delivery.remote import timeouts_from
from posthorn.delivery.smtp_client import Broken, Peer, ResetFailed, SmtpConnection
from posthorn.delivery.smtp_transaction import RcptLine, transaction
from posthorn.message import downgrade
from posthorn.outcome import Deferred, Failed, Outcome, from_reply
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.router import Route
from posthorn.smtp.client import MailOptions
from posthorn.smtp.reply import Reply

__all__ = ["LmtpDelivery", "LmtpTarget", "parse_lmtp_target"]

_log = log.get("lmtp")
LMTP_PORT = 24  # RFC 2033 section 5 (and never 25)
_CACHE_KEY = "lmtp"


@dataclass(frozen=True, slots=True)
class LmtpTarget:
    """Where the LMTP server listens: `path` (a Unix socket) or `host` and `port`."""

    host: str = ""
    port: int = LMTP_PORT
    path: str = ""

    @property
    def peer(self) -> Peer:
        if self.path:
            return Peer("lmtp", "", 0, self.path)
        return Peer(self.host, self.host, self.port)


def parse_lmtp_target(text: str) -> LmtpTarget:
    """'lmtp:unix:/run/dovecot/lmtp', 'lmtp:127.0.0.1:24', 'lmtp:[::1]:2424' -> target."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() != "lmtp" or not rest:
        raise ValueError(f"mailbox must look like lmtp:HOST:PORT or lmtp:unix:/path; got {text!r}")
    if rest.startswith("unix:"):
        path = rest[5:]
        if not path.startswith("/"):
            raise ValueError(f"an LMTP socket path must be absolute; got {path!r}")
        return LmtpTarget(path=path)
    rest = rest.removeprefix("inet:")
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ValueError(f"unbalanced brackets in {text!r}")
        port_text = tail[1:]
    else:
        host, _, port_text = rest.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"bad port {port_text!r} in {text!r}")
    return LmtpTarget(host=host, port=int(port_text) if port_text else LMTP_PORT)


class LmtpDelivery:
    """Transport for `Mailbox` routes when `local.mailbox` names an LMTP server."""

    # The runner hands over every mailbox of a message in one call, so that they share
    # one transaction with a status each (RFC 2033 section 1: why LMTP exists); `route`
    # is then one of them, and the recipients' own addresses are what RCPT names.
    all_routes_at_once = True

    def __init__(self, target: LmtpTarget, config: SmtpClientConfig, *, hostname: str) -> None:
        self.target = target
        self.name = config.helo_name or hostname
        self.timeouts = timeouts_from(config)
        self.cache = ConnectionCache(config.connection_reuse_time, config.connection_reuse_limit)
        self.slots = asyncio.Semaphore(config.destination_concurrency)

    async def close(self) -> None:
        await self.cache.close()

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        rcpts = [
            RcptLine(r.index, r.recipient.address, r.recipient.notify, r.recipient.orcpt)
            for r in recipients
        ]
        async with self.slots:
            while True:
                try:
                    conn = await self._connection()
                except Broken as exc:
                    _log.info("%s: %s", message.qid, exc.reply.text)
                    failed: Outcome = Failed(exc.reply) if exc.permanent else Deferred(exc.reply)
                    return {r.index: failed for r in rcpts}
                # None: a cached connection failed its RSET; the next one is newer or new.
                found = await self._send(message, content, conn, rcpts)
                if found is not None:
                    return found

    async def _connection(self) -> SmtpConnection:
        """An idle connection that still looks open, else a new one. Raises Broken."""
        while (conn := self.cache.take(_CACHE_KEY)) is not None:
            if conn.usable:
                return conn
            conn.abort()
        conn = await SmtpConnection.open(self.target.peer, self.timeouts)
        try:
            await conn.lhlo(self.name, self.timeouts.command)
        except Broken:
            await conn.quit()
            raise
        return conn

    async def _send(
        self,
        message: QueuedMessage,
        content: bytes,
        conn: SmtpConnection,
        rcpts: list[RcptLine],
    ) -> dict[int, Outcome] | None:
        relay = conn.peer.label
        prepared = _prepare(message, content, conn)
        if isinstance(prepared, Reply):
            self.cache.put(_CACHE_KEY, conn)
            return {r.index: Failed(prepared, relay) for r in rcpts}
        options, payload = prepared
        envelope = message.envelope
        try:
            result = await transaction(
                conn, envelope.sender, options, rcpts, payload, self.timeouts, lmtp=True
            )
        except ResetFailed as exc:
            _log.info("%s: not reusing the connection: %s", message.qid, exc.reply.text)
            return None
        except Broken as exc:
            _log.info("%s: %s", message.qid, exc.reply.text)
            return {r.index: Deferred(exc.reply, relay) for r in rcpts}
        self.cache.put(_CACHE_KEY, conn)
        if result.mail_reply is not None:
            return {r.index: from_reply(result.mail_reply, relay) for r in rcpts}
        return {index: from_reply(reply, relay) for index, reply in result.replies.items()}


def _prepare(
    message: QueuedMessage, content: bytes, conn: SmtpConnection
) -> tuple[MailOptions, bytes] | Reply:
    """MAIL parameters and the content for this server, or why it cannot take it."""
    caps, envelope = conn.caps, message.envelope
    if not caps.smtputf8 and downgrade.needs_smtputf8(envelope, content):
        # RFC 6531 section 3.2: a server without SMTPUTF8 cannot take this message.
        return Reply(553, "5.6.7", (f"{conn.peer.label} does not support SMTPUTF8",))
    eight_bit = envelope.body == "8BITMIME" or downgrade.has_8bit(content)
    if eight_bit and not caps.eightbitmime:
        content = downgrade.to_7bit(content)  # RFC 6152 section 3
        eight_bit = downgrade.has_8bit(content)
    if caps.size and len(content) > caps.size:
        # RFC 1870 section 6.1: do not send what the server said it will not take.
        text = f"message size {len(content)} exceeds the limit {caps.size} of {conn.peer.label}"
        return Reply(552, "5.3.4", (text,))
    options = MailOptions(
        size=len(content) if caps.size is not None else None,
        body="8BITMIME" if eight_bit and caps.eightbitmime else None,
        smtputf8=envelope.smtputf8 and caps.smtputf8,
        ret=envelope.ret if caps.dsn else None,
        envid=envelope.envid if caps.dsn else None,
    )
    return options, content
