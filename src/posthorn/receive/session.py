"""One SMTP session's policy: the answer to each event the server core hands out.

Owns: who the client is (HELO name, TLS, AUTH identity, trusted network), the replies
to each command (RFC 5321 section 4.2 codes with RFC 3463 enhanced codes), the
capabilities this session offers (STARTTLS before TLS, AUTH under TLS), STARTTLS and
AUTH exchanges (RFC 3207, RFC 4954), AUTH before MAIL on submission listeners (RFC
6409), recipient limits, relay permission (`routing/relay.py`), VRFY/EXPN/ETRN policy,
error counting and the tarpit. Does not own protocol sequencing or framing
(`posthorn.smtp.server`), what happens to a complete message before intake
(`transaction.py`), what the sessions of a listener share (`context.py`), sockets or
the TLS handshake (`listener.py`, `channel.py`), or shared per-client counters
(`limits.py`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from posthorn import log
from posthorn.address import parse_ip
from posthorn.envelope import Recipient
from posthorn.receive.context import SessionContext
from posthorn.receive.login import Login, LoginResult
from posthorn.receive.transaction import Client, Transaction, finish
from posthorn.routing import relay
from posthorn.smtp import events as ev
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply

__all__ = ["Session"]

_log = log.get("smtpd")

_HELP = (
    "Posthorn ESMTP; commands:",
    "HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN",
    "Standards: RFC 5321 (SMTP), RFC 1869 and successors (ESMTP extensions)",
    "End of HELP info",
)


@functools.lru_cache(maxsize=64)
def _offer(base: Capabilities, starttls: bool, auth: tuple[str, ...]) -> Capabilities:
    """The listener's capabilities as one session offers them: made once per variant,
    not once per connection."""
    return dataclasses.replace(base, starttls=starttls, auth=auth)


class Session:
    """One client's session: `handle` answers each event of its server core."""

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
        self.refused_rcpts = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.tx = Transaction()
        # A client in the trusted networks may relay without AUTH.
        self.trusted = relay.may_relay(client_address, False, ctx.trusted_networks)
        self._login = (
            Login(ctx.passwords, ctx.limits, client_address, self.peer, ctx.sleep)
            if ctx.passwords is not None
            else None
        )
        self.caps = self.capabilities()

    @property
    def loopback(self) -> bool:
        ip = parse_ip(self.client_address)
        return ip is not None and ip.is_loopback

    def capabilities(self) -> Capabilities:
        """What EHLO offers now: STARTTLS until TLS is on, AUTH only under TLS (or on
        loopback when configured), so that no password crosses the wire in clear."""
        base = self.ctx.caps
        auth_ok = bool(self.tls) or (
            self.ctx.config.auth.allow_plaintext_loopback and self.loopback
        )
        offer_auth = self.ctx.passwords is not None and auth_ok
        return _offer(
            base,
            base.starttls and not self.tls,
            tuple(self.ctx.config.auth.mechanisms) if offer_auth else (),
        )

    def tls_started(self, description: str) -> None:
        """TLS is on (after STARTTLS, or from the start on an implicit-TLS listener).

        RFC 3207 section 4.2: forget everything learnt from the client before it.
        """
        self.tls = description or "using TLS"
        self.helo = ""
        self.esmtp = False
        self.auth_user = None
        if self._login is not None:
            self._login.reset()
        self.tx = Transaction()
        self.caps = self.capabilities()
        _log.info("TLS started for %s: %s", self.peer, self.tls)

    @property
    def peer(self) -> str:
        return f"{self.client_name or 'unknown'}[{self.client_address}]"

    def greeting(self) -> Reply:
        return Reply(220, None, (f"{self.hostname} {self.ctx.config.smtp.banner}",))

    def abort(self) -> None:
        """The connection is gone: drop any half-received message."""
        self.tx = Transaction()

    async def handle(self, event: ev.Event) -> Reply | None:
        """The reply to `event`; None for message content, which needs none."""
        if isinstance(event, ev.MessageData):
            self.tx.chunks.append(event.data)
            return None
        if not isinstance(event, ev.EndOfMessage | ev.ChunkReceived):
            # Postfix-style per-command counts for the disconnect log line.
            self.counts[type(event).__name__.lower()] += 1
        reply = _FIXED.get(type(event))
        if reply is None:
            handler = _HANDLERS.get(type(event))
            if handler is None:
                return Reply(502, "5.5.1", ("Error: command not implemented",))
            reply = await handler(self, event)
        if isinstance(event, ev.Rcpt) and reply.code >= 500:
            await self._tarpit()
        if reply.code >= 500 and not isinstance(event, ev.EndOfMessage):
            self.errors += 1
            if self.errors >= self.ctx.max_errors:
                _log.warning("too many errors from %s", self.peer)
                return Reply(421, "4.7.0", (f"{self.hostname} Error: too many errors",))
        return reply

    async def _tarpit(self) -> None:
        """Slow down a client that guesses recipients (a dictionary attack)."""
        self.refused_rcpts += 1
        limits = self.ctx.config.limits
        if self.refused_rcpts > limits.tarpit_after and limits.tarpit_delay:
            await self.ctx.sleep(limits.tarpit_delay)

    # -- handlers --------------------------------------------------------------------

    async def _helo(self, event: ev.Helo | ev.Ehlo) -> Reply:
        self.helo = event.domain
        self.esmtp = isinstance(event, ev.Ehlo)
        self.tx = Transaction()
        peer = f" [{self.client_address}]" if self.client_address else ""  # local: none
        first = f"{self.hostname} Hello {event.domain}{peer}, pleased to meet you"
        if isinstance(event, ev.Helo):
            return Reply(250, None, (first,))
        # RFC 2034 section 3: no enhanced code in the EHLO reply.
        return Reply(250, None, (first, *self.caps.keywords()))

    async def _mail(self, event: ev.Mail) -> Reply:
        if self.ctx.require_auth and self.auth_user is None:
            if self.ctx.caps.starttls and not self.tls:
                return Reply(530, "5.7.0", ("Must issue a STARTTLS command first",))
            # RFC 4954 section 6: 530 5.7.0 when the server requires authentication.
            return Reply(530, "5.7.0", ("Authentication required",))
        if self.ctx.limits is not None:
            refusal = self.ctx.limits.mail(self.client_address)
            if refusal is not None:
                _log.warning("message rate limit for %s", self.peer)
                return refusal
        self.tx = Transaction(sender=event)
        return Reply(250, "2.1.0", ("Ok",))

    async def _rcpt(self, event: ev.Rcpt) -> Reply:
        tx = self.tx
        if len(tx.recipients) >= self.ctx.config.smtp.max_recipients:
            # RFC 5321 section 4.5.3.1.10: 452 tells the client to send the rest later.
            return Reply(452, "4.5.3", ("Error: too many recipients",))
        router = self.ctx.router
        # The destination, seen through percent hacks, bang paths and quoted '@'.
        address = relay.destination(event.recipient, router.is_local)
        if not router.is_local(address) and not self._may_relay():
            # RFC 5321 section 3.6.2 and RFC 2505: no open relay.
            _log.info("relay denied for <%s> from %s", event.recipient, self.peer)
            return Reply(554, "5.7.1", (f"<{event.recipient}>: Relay access denied",))
        refusal = router.check_recipient(address)
        if refusal is not None:
            return refusal
        tx.recipients.append(Recipient(address, event.params.notify, event.params.orcpt))
        return Reply(250, "2.1.5", ("Ok",))

    def _may_relay(self) -> bool:
        return self.trusted or self.auth_user is not None

    async def _end(self, event: ev.EndOfMessage) -> Reply:
        tx, self.tx = self.tx, Transaction()
        if event.problem is not None:
            return event.problem
        checker = self.ctx.checker
        reply = await finish(tx, self._client(), self.ctx.config, self.ctx.intake, checker)
        if reply.is_positive:
            self.counts["accepted"] += 1
        return reply

    def _client(self) -> Client:
        return Client(
            address=self.client_address,
            name=self.client_name,
            helo=self.helo,
            esmtp=self.esmtp,
            tls=self.tls,
            auth_user=self.auth_user,
            local_uid=self.local_uid,
            may_relay=self._may_relay(),
            peer=self.peer,
        )

    async def _chunk(self, event: ev.ChunkReceived) -> Reply:
        if event.problem is not None:
            self.tx = Transaction()
            return event.problem
        return Reply(250, "2.0.0", (f"{event.size} octets received",))

    async def _rset(self, event: ev.Rset) -> Reply:
        self.tx = Transaction()
        return Reply(250, "2.0.0", ("Ok",))

    def _may_probe(self, mode: str) -> bool:
        """VRFY/EXPN policy: they reveal who is here, so config may limit or disable them."""
        return mode == "on" or (mode == "trusted" and self._may_relay())

    async def _vrfy(self, event: ev.Vrfy) -> Reply:
        if not self._may_probe(self.ctx.config.verify.vrfy):
            # RFC 5321 section 7.3: a disabled VRFY answers 252, never 250 or 550.
            return Reply(252, "2.0.0", ("Cannot VRFY user, but will attempt delivery",))
        return self.ctx.router.verify(event.argument, may_relay=self._may_relay())

    async def _expn(self, event: ev.Expn) -> Reply:
        if not self._may_probe(self.ctx.config.verify.expn):
            # RFC 5321 section 7.3: a disabled EXPN answers as VRFY does, with 252.
            return Reply(252, "2.0.0", ("Cannot EXPN, but will attempt delivery",))
        return self.ctx.router.expand(event.argument)

    async def _etrn(self, event: ev.Etrn) -> Reply:
        if self.ctx.etrn is None:
            return Reply(502, "5.5.1", ("Error: command not implemented",))
        if not self._may_relay():
            # ETRN makes this server start connections: only for clients it trusts
            # (RFC 1985: 459, the node may not be flushed by this client).
            return Reply(459, "4.7.1", (f"{event.argument}: ETRN not allowed for you",))
        return await self.ctx.etrn(event.argument)

    async def _invalid(self, event: ev.Invalid) -> Reply:
        return event.reply

    async def _auth(self, event: ev.Auth) -> Reply:
        if self._login is None:
            return Reply(502, "5.5.1", ("Error: authentication not enabled",))
        result = await self._login.start(event.mechanism, event.initial, self.caps.auth)
        return self._logged_in(result)

    async def _auth_response(self, event: ev.AuthResponse) -> Reply:
        if self._login is None:
            return Reply(503, "5.5.1", ("Error: no AUTH in progress",))
        return self._logged_in(await self._login.respond(event.line))

    def _logged_in(self, result: LoginResult) -> Reply:
        if result.user is not None:
            self.auth_user = result.user
        return result.reply


# Commands whose reply never depends on the session.
_FIXED: dict[type, Reply] = {
    ev.Data: Reply(354, None, ("End data with <CR><LF>.<CR><LF>",)),
    ev.Noop: Reply(250, "2.0.0", ("Ok",)),
    ev.Quit: Reply(221, "2.0.0", ("Bye",)),
    ev.Help: Reply(214, "2.0.0", _HELP),
    # RFC 5321 appendix F.1: TURN lets a client divert mail; deprecated, not offered.
    ev.Turn: Reply(502, "5.5.1", ("Error: TURN not implemented",)),
    # The conversation starts the handshake once this reply is written (RFC 3207 4).
    ev.StartTls: Reply(220, "2.0.0", ("Ready to start TLS",)),
}

_HANDLERS: dict[type, Callable[[Session, Any], Awaitable[Reply]]] = {
    ev.Helo: Session._helo,
    ev.Ehlo: Session._helo,
    ev.Mail: Session._mail,
    ev.Rcpt: Session._rcpt,
    ev.EndOfMessage: Session._end,
    ev.ChunkReceived: Session._chunk,
    ev.Rset: Session._rset,
    ev.Vrfy: Session._vrfy,
    ev.Expn: Session._expn,
    ev.Etrn: Session._etrn,
    ev.Invalid: Session._invalid,
    ev.Auth: Session._auth,
    ev.AuthResponse: Session._auth_response,
}
