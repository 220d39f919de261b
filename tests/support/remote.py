"""The remote transport in the test's own event loop: a `RemoteDelivery` with short
timeouts toward loopback peers, and queued messages to hand it. The peers and the DNS
server are real sockets (support/smtp_peer.py, support/dns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from posthorn.address import Address
from posthorn.config import DnsConfig, SmtpClientConfig
from posthorn.delivery.remote import RemoteDelivery
from posthorn.dns import MxResolver, make_resolver
from posthorn.envelope import Envelope, Recipient
from posthorn.outcome import Outcome
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.nexthop import TransportTable
from posthorn.routing.router import Remote

CONTENT = b"Subject: t\r\n\r\nbody\r\n"
_SHORT = (
    "greeting_timeout", "command_timeout", "mail_timeout", "rcpt_timeout", "data_timeout",
    "data_block_timeout", "data_end_timeout",
)  # fmt: skip


def message(*rcpts: str, qid: str = "0000000000000ABC", **envelope: object) -> QueuedMessage:
    utf8 = bool(envelope.get("smtputf8"))
    recipients = tuple(
        Recipient(Address.parse(r, utf8=utf8)) for r in rcpts or ("bob@example.test",)
    )
    env = Envelope(Address("alice", "sender.test"), recipients, arrival=1.0, **envelope)  # type: ignore[arg-type]
    statuses = tuple(RecipientStatus(i, r) for i, r in enumerate(recipients))
    return QueuedMessage(qid, env, len(CONTENT), statuses)


def client_config(**overrides: object) -> SmtpClientConfig:
    """Every timeout 1 s (connect 2 s), no connection reuse, unless overridden."""
    settings: dict[str, object] = {name: 1.0 for name in _SHORT}
    settings.update(connect_timeout=2.0, connection_reuse_time=0.0)
    settings.update(overrides)
    return SmtpClientConfig(**settings)  # type: ignore[arg-type]


def remote(
    routes: dict[str, str] | None = None, dns: str = "127.0.0.1:9", **overrides: object
) -> RemoteDelivery:
    """A RemoteDelivery resolving through `dns` (HOST:PORT) with `routes` as [routes]."""
    return RemoteDelivery(
        client_config(**overrides),
        MxResolver(make_resolver(DnsConfig(nameservers=(dns,), timeout=2.0))),
        TransportTable(routes or {}),
        hostname="sender.test",
    )


async def deliver(
    transport: RemoteDelivery, msg: QueuedMessage, content: bytes = CONTENT
) -> dict[int, Outcome]:
    domain = msg.recipients[0].recipient.address.domain
    return await transport.deliver(msg, content, Remote(domain), msg.pending)


async def deliver_only(
    transport: RemoteDelivery,
    msg: QueuedMessage,
    servers: Iterable[asyncio.Server] = (),
    within: float = 20.0,
) -> Outcome:
    """The outcome for `msg`'s only recipient; the transport and `servers` are closed
    afterwards, whatever happened."""
    try:
        async with asyncio.timeout(within):
            (outcome,) = (await deliver(transport, msg)).values()
    finally:
        await transport.close()
        for server in servers:
            server.close()
    return outcome
