"""The remote transport: recipients in other domains go to their mail exchangers.

Owns: the try order of RFC 5321 section 5 (the route or the MX list, every address of
each host; a refused, timed-out or dropped connection or a 4xx greeting moves on to the
next address), what a message needs from a peer before it is sent there (SIZE, RFC 1870;
SMTPUTF8, RFC 6531; 8BITMIME or a downgrade to 7 bits, RFC 6152), the TLS policy and
AUTH credentials of each destination, connection reuse and concurrency limits, and
turning replies into an `Outcome` per recipient. Does not own DNS answers (`dns.py`),
the SMTP dialogue (`smtp_client.py`) or retries (the queue runner).

Never raises for a peer's or the network's trouble: everything becomes an outcome.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from posthorn import log
from posthorn.config import SmtpClientConfig
from posthorn.delivery.pool import ConnectionCache, Slots
from posthorn.delivery.smtp_client import Broken, Peer, ResetFailed, SmtpConnection, Timeouts
from posthorn.delivery.smtp_transaction import RcptLine, transaction
from posthorn.dns import LookupFailed, MxResolver, NoRecords, NoSuchDomain, mx_candidates
from posthorn.message import downgrade
from posthorn.outcome import Deferred, Delivered, Failed, Handoff, Outcome, from_reply
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.nexthop import Nexthop, TransportTable
from posthorn.routing.router import Remote, Route
from posthorn.smtp.client import MailOptions
from posthorn.smtp.reply import Reply

__all__ = ["MAX_ADDRESSES", "RemoteDelivery", "no_address", "timeouts_from", "tls_policy"]

_log = log.get("smtp")
MAX_ADDRESSES = 10  # addresses tried per delivery, all hosts together (Postfix: 5 + 2)


def tls_policy(config: SmtpClientConfig, domain: str, nexthop: Nexthop) -> tuple[str, str]:
    """The STARTTLS policy toward a destination and the setting it comes from: the
    recipient domain's entry in `tls_policy`, then the relay host's, then `tls`."""
    for key in (domain, nexthop.host):
        if key in config.tls_policy:
            return config.tls_policy[key], f"smtp_client.tls_policy.{key}"
    return config.tls, "smtp_client.tls"


def no_address(host: str, answer: NoSuchDomain | NoRecords | LookupFailed) -> Reply:
    """Why `host` cannot be tried: a temporary DNS failure, or no such host (permanent
    for this host; the next MX may still take the mail)."""
    if isinstance(answer, LookupFailed):
        return Reply(451, "4.4.3", (f"DNS lookup for {host} failed: {answer.reason}",))
    what = "not found" if isinstance(answer, NoSuchDomain) else "has no address"
    return Reply(550, "5.4.4", (f"Host {host} {what}",))


def timeouts_from(config: SmtpClientConfig) -> Timeouts:
    return Timeouts(
        connect=config.connect_timeout,
        greeting=config.greeting_timeout,
        command=config.command_timeout,
        mail=config.mail_timeout,
        rcpt=config.rcpt_timeout,
        data=config.data_timeout,
        data_block=config.data_block_timeout,
        data_end=config.data_end_timeout,
    )


@dataclass(slots=True)
class _Attempt:
    """One delivery of one message to one destination: what is decided so far."""

    message: QueuedMessage
    content: bytes
    pending: dict[int, RcptLine]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    temporary: Reply | None = None  # the last reason to try again later
    permanent: Reply | None = None  # the last reason no peer can take it
    relay: str = ""
    seven_bit: bytes | None = None
    cache_key: str = ""  # idle connections fit for this attempt: destination and TLS policy

    def host_failed(self, reply: Reply, permanent: bool, relay: str) -> None:
        if permanent:
            self.permanent = reply
        else:
            self.temporary = reply
        self.relay = relay or self.relay


class RemoteDelivery:
    """Transport for `Remote` routes (see the queue runner's Transport protocol)."""

    def __init__(
        self,
        config: SmtpClientConfig,
        resolver: MxResolver,
        routes: TransportTable,
        *,
        hostname: str,
    ) -> None:
        self.config = config
        self.resolver = resolver
        self.routes = routes
        self.helo = config.helo_name or hostname
        self.me = frozenset({hostname.lower(), self.helo.lower()})
        self.timeouts = timeouts_from(config)
        self.cache = ConnectionCache(config.connection_reuse_time, config.connection_reuse_limit)
        self.slots = Slots(config.max_connections, config.destination_concurrency)
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        await self.cache.close()

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        assert isinstance(route, Remote)
        nexthop = self.routes.lookup(route.domain)
        lines = {
            r.index: RcptLine(r.index, r.recipient.address, r.recipient.notify, r.recipient.orcpt)
            for r in recipients
        }
        # Domains routed to one relay share its connections, but only under the same TLS
        # policy: a "required" domain must not reuse a plaintext "none" connection.
        policy = self._tls_policy(route.domain, nexthop)
        attempt = _Attempt(message, content, lines, cache_key=f"{nexthop.label} tls={policy}")
        hosts = await self._hosts(route.domain, nexthop)
        if not isinstance(hosts, list):
            return {i: hosts for i in lines}
        port = nexthop.port or self.config.port
        async with self.slots.hold(nexthop.label):
            await self._try_cached(attempt)
            budget = MAX_ADDRESSES
            for host in hosts:
                if not attempt.pending or budget <= 0:
                    break
                budget -= await self._try_host(attempt, nexthop, route.domain, host, port, budget)
        return {**attempt.outcomes, **self._leftovers(attempt)}

    async def _hosts(self, domain: str, nexthop: Nexthop) -> list[str] | Outcome:
        if not nexthop.mx:
            return [nexthop.host]
        answer = await self.resolver.mx(nexthop.host)
        return mx_candidates(nexthop.host, answer, me=self.me)

    def _leftovers(self, attempt: _Attempt) -> dict[int, Outcome]:
        """Recipients no peer decided: defer on any temporary trouble, else fail."""
        if attempt.temporary is not None:
            left: Outcome = Deferred(attempt.temporary, attempt.relay)
        elif attempt.permanent is not None:
            left = Failed(attempt.permanent, attempt.relay)
        else:
            left = Deferred(Reply(451, "4.4.0", ("No mail exchanger could be tried",)))
        return {i: left for i in attempt.pending}

    # -- hosts and connections -------------------------------------------------------

    async def _try_cached(self, attempt: _Attempt) -> None:
        """Send over an idle connection to the destination, if one still answers RSET."""
        while attempt.pending:
            conn = self.cache.take(attempt.cache_key)
            if conn is None:
                return
            if not conn.usable:
                conn.abort()
                continue
            _log.debug("%s: reusing connection to %s", attempt.message.qid, conn.peer.label)
            if await self._send(attempt, conn):
                return

    async def _try_host(
        self, attempt: _Attempt, nexthop: Nexthop, domain: str, host: str, port: int, budget: int
    ) -> int:
        """Try each address of `host`, `budget` at most; returns how many were tried."""
        addresses = await self.resolver.addresses(host)
        if not isinstance(addresses, list):
            reply = no_address(host, addresses)
            attempt.host_failed(reply, reply.is_permanent, "")
            return 0
        tried = 0
        for address in addresses[:budget]:
            if not attempt.pending:
                break
            tried += 1
            peer = Peer(host, address, port)
            try:
                conn = await self._connect(peer, nexthop, domain)
            except Broken as exc:
                _log.info("%s: %s", attempt.message.qid, exc.reply.text)
                attempt.host_failed(exc.reply, exc.permanent, peer.label)
                continue
            await self._send(attempt, conn)
        return tried

    async def _connect(self, peer: Peer, nexthop: Nexthop, domain: str) -> SmtpConnection:
        timeouts = self.timeouts
        conn = await SmtpConnection.open(peer, timeouts)
        try:
            await conn.hello(self.helo, timeouts.command)
            policy = self._tls_policy(domain, nexthop)
            if policy != "none" and conn.caps.starttls:
                context = self._context(policy)
                name = peer.host if policy == "verify" else None
                await conn.starttls(context, name, timeouts.command)
                # Postfix's words: "Verified" only when the certificate chain and name were.
                trust = "Verified" if policy == "verify" else "Untrusted"
                _log.info("%s TLS connection established to %s: %s", trust, peer.label, conn.tls)
                await conn.hello(self.helo, timeouts.command)
            elif policy in ("required", "verify"):
                text = f"TLS is required, but {peer.label} does not offer STARTTLS"
                raise Broken(Reply(451, "4.7.4", (text,)))
            credentials = self.config.credentials.get(nexthop.host)
            if credentials and conn.caps.auth:
                if not conn.tls and not self.config.auth_without_tls:
                    text = f"not sending credentials to {peer.label} without TLS"
                    raise Broken(Reply(451, "4.7.4", (text,)))
                user, _, password = credentials.partition(":")
                await conn.authenticate(user, password, timeouts.command)
        except Broken:
            await conn.quit()
            raise
        return conn

    def _tls_policy(self, domain: str, nexthop: Nexthop) -> str:
        return tls_policy(self.config, domain, nexthop)[0]

    def _context(self, policy: str) -> ssl.SSLContext:
        if policy not in self._contexts:
            context = ssl.create_default_context(cafile=self.config.tls_ca_file or None)
            if policy != "verify":
                # RFC 7435: opportunistic (and merely required) TLS encrypts without
                # authenticating the peer; an unverified channel beats plaintext.
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[policy] = context
        return self._contexts[policy]

    # -- one transaction -------------------------------------------------------------

    async def _send(self, attempt: _Attempt, conn: SmtpConnection) -> bool:
        """Send to one connected peer; keeps the connection for reuse when it is healthy.
        False when a reused connection failed its RSET: nothing was decided, connect anew."""
        label = conn.peer.label
        prepared = self._prepare(attempt, conn)
        if isinstance(prepared, Reply):
            _log.info("%s: %s: %s", attempt.message.qid, label, prepared)
            attempt.host_failed(prepared, True, label)
            self.cache.put(attempt.cache_key, conn)
            return True
        options, payload = prepared
        rcpts = list(attempt.pending.values())
        envelope = attempt.message.envelope
        try:
            result = await transaction(
                conn, envelope.sender, options, rcpts, payload, self.timeouts
            )
        except ResetFailed as exc:
            _log.info("%s: not reusing the connection: %s", attempt.message.qid, exc.reply.text)
            return False
        except Broken as exc:
            _log.info("%s: %s", attempt.message.qid, exc.reply.text)
            attempt.host_failed(exc.reply, False, label)
            return True
        self.cache.put(attempt.cache_key, conn)
        if result.mail_reply is not None:
            if result.mail_reply.is_permanent:
                for index in list(attempt.pending):
                    attempt.outcomes[index] = Failed(result.mail_reply, label)
                attempt.pending.clear()
            else:
                # A 4xx to MAIL is the host's trouble, not the recipients': next host.
                attempt.host_failed(result.mail_reply, False, label)
            return True
        handoff = Handoff.DSN_PASSED if conn.caps.dsn else Handoff.RELAYED
        for index, reply in result.replies.items():
            outcome = from_reply(reply, label)
            if isinstance(outcome, Delivered):
                outcome = Delivered(reply, label, handoff)
            attempt.outcomes[index] = outcome
            attempt.pending.pop(index, None)
        return True

    def _prepare(
        self, attempt: _Attempt, conn: SmtpConnection
    ) -> tuple[MailOptions, bytes] | Reply:
        """MAIL parameters and the content to send to this peer, or why it cannot take it."""
        caps = conn.caps
        envelope = attempt.message.envelope
        content = attempt.content
        utf8 = envelope.smtputf8 and caps.smtputf8
        if not caps.smtputf8 and downgrade.needs_smtputf8(envelope, content):
            # RFC 6531 section 3.2: a peer without SMTPUTF8 cannot take this message.
            return Reply(553, "5.6.7", (f"{conn.peer.label} does not support SMTPUTF8",))
        eight_bit = envelope.body == "8BITMIME" or downgrade.has_8bit(content)
        if eight_bit and not caps.eightbitmime:
            if attempt.seven_bit is None:
                attempt.seven_bit = downgrade.to_7bit(content)
            content = attempt.seven_bit
            eight_bit = downgrade.has_8bit(content)  # 8-bit headers stay as they were
        if caps.size and len(content) > caps.size:
            # RFC 1870 section 6.1: do not send what the peer said it will not take.
            text = (
                f"message size {len(content)} exceeds the limit {caps.size} of {conn.peer.label}"
            )
            return Reply(552, "5.3.4", (text,))
        options = MailOptions(
            size=len(content) if caps.size is not None else None,
            body="8BITMIME" if eight_bit and caps.eightbitmime else None,
            smtputf8=utf8,
            ret=envelope.ret if caps.dsn else None,
            envid=envelope.envid if caps.dsn else None,
        )
        return options, content
