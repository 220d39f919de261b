"""One SMTP session's policy: the answer to each event the server core hands out.

Owns: the transaction being built (sender, recipients, content), the replies to each
command (RFC 5321 section 4.2 codes with RFC 3463 enhanced codes), recipient limits,
relay permission, error counting, and handing a complete message to intake. Does not own
protocol sequencing or framing (`posthorn.smtp.server`) or sockets (`listener.py`).
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from posthorn import log
from posthorn.config import Config
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.routing.router import Router
from posthorn.smtp import events as ev
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply

__all__ = ["Session", "SessionContext"]

_log = log.get("smtpd")

_HELP = (
    "Posthorn ESMTP; commands:",
    "HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN",
    "Standards: RFC 5321 (SMTP), RFC 1869 and successors (ESMTP extensions)",
    "End of HELP info",
)


@dataclass(slots=True)
class SessionContext:
    """What every session of a listener shares."""

    config: Config
    intake: Intake
    router: Router
    caps: Capabilities
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    etrn: Callable[[str], Awaitable[Reply]] | None = None
    max_errors: int = 20


@dataclass(slots=True)
class _Transaction:
    sender: ev.Mail | None = None
    recipients: list[Recipient] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)


class Session:
    def __init__(self, ctx: SessionContext, client_address: str, client_name: str) -> None:
        self.ctx = ctx
        self.hostname = ctx.config.server.hostname
        self.client_address = client_address
        self.client_name = client_name
        self.helo = ""
        self.esmtp = False
        self.tls = ""  # protocol and cipher, once STARTTLS is done
        self.auth_user: str | None = None
        self.local_uid: int | None = None  # set for a local session (sendmail -bs)
        self.errors = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.tx = _Transaction()
        self.trusted = self._is_trusted(client_address)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.ctx.trusted_networks)

    @property
    def peer(self) -> str:
        return f"{self.client_name or 'unknown'}[{self.client_address}]"

    def greeting(self) -> Reply:
        return Reply(220, None, (f"{self.hostname} {self.ctx.config.smtp.banner}",))

    def abort(self) -> None:
        """The connection is gone: drop any half-received message."""
        self.tx = _Transaction()

    async def handle(self, event: ev.Event) -> Reply | None:
        """The reply to `event`; None for message content, which needs none."""
        if isinstance(event, ev.MessageData):
            self.tx.chunks.append(event.data)
            return None
        if not isinstance(event, ev.EndOfMessage | ev.ChunkReceived):
            # Postfix-style per-command counts for the disconnect log line.
            self.counts[type(event).__name__.lower()] += 1
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return Reply(502, "5.5.1", ("Error: command not implemented",))
        reply = await handler(self, event)
        if reply.code >= 500 and not isinstance(event, ev.EndOfMessage):
            self.errors += 1
            if self.errors >= self.ctx.max_errors:
                _log.warning("too many errors from %s", self.peer)
                return Reply(421, "4.7.0", (f"{self.hostname} Error: too many errors",))
        return reply

    # -- handlers --------------------------------------------------------------------

    async def _helo(self, event: ev.Helo | ev.Ehlo) -> Reply:
        self.helo = event.domain
        self.esmtp = isinstance(event, ev.Ehlo)
        self.tx = _Transaction()
        peer = f" [{self.client_address}]" if self.client_address else ""  # local: none
        first = f"{self.hostname} Hello {event.domain}{peer}, pleased to meet you"
        if isinstance(event, ev.Helo):
            return Reply(250, None, (first,))
        # RFC 2034 section 3: no enhanced code in the EHLO reply.
        return Reply(250, None, (first, *self.ctx.caps.keywords()))

    async def _mail(self, event: ev.Mail) -> Reply:
        self.tx = _Transaction(sender=event)
        return Reply(250, "2.1.0", ("Ok",))

    async def _rcpt(self, event: ev.Rcpt) -> Reply:
        tx = self.tx
        if len(tx.recipients) >= self.ctx.config.smtp.max_recipients:
            # RFC 5321 section 4.5.3.1.10: 452 tells the client to send the rest later.
            return Reply(452, "4.5.3", ("Error: too many recipients",))
        address = event.recipient
        router = self.ctx.router
        refusal = router.check_recipient(address)
        if refusal is not None:
            return refusal
        if not router.is_local(address) and not self._may_relay():
            return Reply(554, "5.7.1", (f"<{address}>: Relay access denied",))
        tx.recipients.append(Recipient(address, event.params.notify, event.params.orcpt))
        return Reply(250, "2.1.5", ("Ok",))

    def _may_relay(self) -> bool:
        return self.trusted or self.auth_user is not None

    async def _data(self, event: ev.Data) -> Reply:
        return Reply(354, None, ("End data with <CR><LF>.<CR><LF>",))

    async def _end(self, event: ev.EndOfMessage) -> Reply:
        tx, self.tx = self.tx, _Transaction()
        if event.problem is not None:
            return event.problem
        assert tx.sender is not None
        content = b"".join(tx.chunks)
        tx.chunks.clear()
        reply = await self.ctx.intake.submit(
            self._envelope(tx), content, tls=self.tls, uid=self.local_uid
        )
        if reply.is_positive:
            self.counts["accepted"] += 1
        return reply

    async def _chunk(self, event: ev.ChunkReceived) -> Reply:
        if event.problem is not None:
            self.tx = _Transaction()
            return event.problem
        return Reply(250, "2.0.0", (f"{event.size} octets received",))

    def _envelope(self, tx: _Transaction) -> Envelope:
        assert tx.sender is not None
        params = tx.sender.params
        proto = ("UTF8SMTP" if params.smtputf8 else "ESMTP") if self.esmtp else "SMTP"
        # RFC 3848: S for TLS, A for an authenticated client.
        proto += ("S" if self.tls else "") + ("A" if self.auth_user else "")
        return Envelope(
            sender=tx.sender.sender,
            recipients=tuple(tx.recipients),
            body=params.body,
            smtputf8=params.smtputf8,
            ret=params.ret,
            envid=params.envid,
            client_address=self.client_address,
            client_name=self.client_name,
            helo=self.helo,
            protocol=proto,
            auth_user=self.auth_user,
        )

    async def _rset(self, event: ev.Rset) -> Reply:
        self.tx = _Transaction()
        return Reply(250, "2.0.0", ("Ok",))

    async def _noop(self, event: ev.Noop) -> Reply:
        return Reply(250, "2.0.0", ("Ok",))

    async def _quit(self, event: ev.Quit) -> Reply:
        return Reply(221, "2.0.0", ("Bye",))

    async def _help(self, event: ev.Help) -> Reply:
        return Reply(214, "2.0.0", _HELP)

    async def _vrfy(self, event: ev.Vrfy) -> Reply:
        return self.ctx.router.verify(event.argument)

    async def _expn(self, event: ev.Expn) -> Reply:
        return self.ctx.router.expand(event.argument)

    async def _turn(self, event: ev.Turn) -> Reply:
        # RFC 2821 section 4.1.1.11 (via RFC 2821 4.1.4): TURN is unsafe; not offered.
        return Reply(502, "5.5.1", ("Error: TURN not implemented",))

    async def _etrn(self, event: ev.Etrn) -> Reply:
        if self.ctx.etrn is None:
            return Reply(502, "5.5.1", ("Error: command not implemented",))
        return await self.ctx.etrn(event.argument)

    async def _invalid(self, event: ev.Invalid) -> Reply:
        return event.reply


_HANDLERS: dict[type, Callable[[Session, Any], Awaitable[Reply]]] = {
    ev.Helo: Session._helo,
    ev.Ehlo: Session._helo,
    ev.Mail: Session._mail,
    ev.Rcpt: Session._rcpt,
    ev.Data: Session._data,
    ev.EndOfMessage: Session._end,
    ev.ChunkReceived: Session._chunk,
    ev.Rset: Session._rset,
    ev.Noop: Session._noop,
    ev.Quit: Session._quit,
    ev.Help: Session._help,
    ev.Vrfy: Session._vrfy,
    ev.Expn: Session._expn,
    ev.Turn: Session._turn,
    ev.Etrn: Session._etrn,
    ev.Invalid: Session._invalid,
}
