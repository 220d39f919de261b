"""Bad input from peers and from DNS: every case becomes a deferred or failed outcome with
a clear diagnostic, never an exception. The peers here are scripted TCP servers on
loopback (a real socket each) because no real MTA sends garbage on purpose; DNS trouble
comes from the loopback DNS server (SERVFAIL, silence, junk)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from posthorn.address import Address
from posthorn.config import DnsConfig, SmtpClientConfig
from posthorn.delivery.remote import RemoteDelivery
from posthorn.dns import MxResolver, make_resolver
from posthorn.envelope import Envelope, Recipient
from posthorn.outcome import Deferred, Delivered, Failed, Outcome
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.nexthop import TransportTable
from posthorn.routing.router import Remote
from support.dns import dns_server

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONTENT = b"Subject: t\r\n\r\nbody\r\n"
EHLO = b"250-peer.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def _message(*rcpts: str) -> QueuedMessage:
    recipients = tuple(Recipient(Address.parse(r)) for r in rcpts)
    envelope = Envelope(Address("alice", "sender.test"), recipients, arrival=1.0)
    statuses = tuple(RecipientStatus(i, r) for i, r in enumerate(recipients))
    return QueuedMessage("0000000000000ABC", envelope, len(CONTENT), statuses)


def _client(**overrides: object) -> SmtpClientConfig:
    settings: dict[str, object] = {
        "connect_timeout": 2.0,
        "greeting_timeout": 1.0,
        "command_timeout": 1.0,
        "mail_timeout": 1.0,
        "rcpt_timeout": 1.0,
        "data_timeout": 1.0,
        "data_block_timeout": 1.0,
        "data_end_timeout": 1.0,
        "connection_reuse_time": 0.0,
    }
    settings.update(overrides)
    return SmtpClientConfig(**settings)  # type: ignore[arg-type]


async def _deliver_via(handler: Handler, *rcpts: str) -> dict[int, Outcome]:
    """Deliver one message through a scripted peer on a free loopback port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    remote = RemoteDelivery(
        _client(),
        MxResolver(make_resolver(DnsConfig(nameservers=("127.0.0.1:9",), timeout=1.0))),
        TransportTable({"*": f"smtp:[127.0.0.1]:{port}"}),
        hostname="sender.test",
    )
    try:
        async with asyncio.timeout(20):
            message = _message(*(rcpts or ("bob@example.test",)))
            return await remote.deliver(message, CONTENT, Remote("example.test"), message.pending)
    finally:
        await remote.close()
        server.close()


async def _lines_until(reader: asyncio.StreamReader, end: bytes) -> None:
    while not (await reader.readline()).startswith(end):
        pass


def _run(handler: Handler, *rcpts: str) -> dict[int, Outcome]:
    return asyncio.run(_deliver_via(handler, *rcpts))


def test_garbage_greeting_defers_with_a_diagnostic() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HELLO I AM NOT SMTP\r\n")
        await reader.read(100)
        writer.close()

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Deferred)
    assert outcome.reply.esc == "4.5.0"
    assert "bad reply" in outcome.reply.text
    assert "not a reply line" in outcome.reply.text


def test_multiline_replies_split_into_single_bytes_are_assembled() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def dribble(data: bytes) -> None:
            for i in range(len(data)):  # one write per octet: many small packets
                writer.write(data[i : i + 1])
                await writer.drain()

        await dribble(b"220-peer.test ESMTP\r\n220 second greeting line\r\n")
        await reader.readline()
        await dribble(EHLO)
        await reader.readline()  # MAIL, RCPT and DATA arrive pipelined
        await reader.readline()
        await reader.readline()
        await dribble(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
        await _lines_until(reader, b".\r")
        await dribble(b"250-2.0.0 queued\r\n250 2.0.0 as ABC\r\n")
        await reader.read(100)
        writer.close()

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Delivered)
    assert outcome.reply.lines == ("queued", "as ABC")


def test_a_stalling_peer_times_out_and_defers() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 peer.test ESMTP\r\n")
        await reader.readline()
        await reader.read(100)  # never answers EHLO; waits for the client to give up

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Deferred)
    assert "timeout waiting for a reply" in outcome.reply.text


def test_connection_lost_before_the_final_reply_is_not_delivered() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 peer.test\r\n")
        await reader.readline()
        writer.write(EHLO)
        for _ in range(3):
            await reader.readline()
        writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
        await _lines_until(reader, b".\r")
        writer.close()  # hang up instead of the 250

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Deferred)
    assert "lost connection" in outcome.reply.text


def test_mixed_recipient_replies_over_pipelining() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 peer.test\r\n")
        await reader.readline()
        writer.write(EHLO)
        for _ in range(5):  # MAIL, 3 x RCPT, DATA
            await reader.readline()
        writer.write(
            b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
            b"451 4.2.1 try later\r\n354 go\r\n"
        )
        await _lines_until(reader, b".\r")
        writer.write(b"250 2.0.0 queued\r\n")
        await reader.read(100)
        writer.close()

    outcomes = _run(peer, "a@example.test", "b@example.test", "c@example.test")
    assert isinstance(outcomes[0], Delivered)
    assert isinstance(outcomes[1], Failed)
    assert str(outcomes[1].reply) == "550 5.1.1 no such user"
    assert isinstance(outcomes[2], Deferred)
    assert outcomes[2].relay.startswith("127.0.0.1[127.0.0.1]:")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"421 4.3.2 busy\r\n", "refused to talk to me: 421"),
        (b"220-ok\r\n250 changed code\r\n", "changed code"),
        (b"2" * 9000 + b"\r\n", "too long"),
    ],
)
def test_bad_greetings_defer(reply: bytes, expected: str) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await reader.read(100)
        writer.close()

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Deferred)
    assert expected in outcome.reply.text


def test_a_5xx_greeting_fails_when_no_other_host_exists() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.7.1 no service for you\r\n")
        await reader.read(100)
        writer.close()

    (outcome,) = _run(peer).values()
    assert isinstance(outcome, Failed)
    assert "no service for you" in outcome.reply.text


# -- DNS trouble ------------------------------------------------------------------------

ZONE = """
bad-mx.test. 300 IN MX 10 junk.test.
good.test. 300 IN MX 10 nowhere.good.test.
"""


async def _deliver_to(domain: str, dns_address: str) -> Outcome:
    remote = RemoteDelivery(
        _client(port=9),
        MxResolver(make_resolver(DnsConfig(nameservers=(dns_address,), timeout=1.0))),
        TransportTable({}),
        hostname="sender.test",
    )
    message = _message(f"bob@{domain}")
    async with asyncio.timeout(20):
        (outcome,) = (
            await remote.deliver(message, CONTENT, Remote(domain), message.pending)
        ).values()
    return outcome


@pytest.mark.parametrize(
    ("domain", "kind", "text"),
    [
        ("broken.test", Deferred, "451 4.4.3 DNS lookup for broken.test failed: server failure"),
        ("silent.test", Deferred, "451 4.4.3 DNS lookup for silent.test failed: timed out"),
        ("junk.test", Deferred, "451 4.4.3 DNS lookup for junk.test failed"),
        ("bad-mx.test", Deferred, "451 4.4.3 DNS lookup for junk.test failed"),
        ("nowhere.test", Failed, "550 5.1.2 Domain nowhere.test not found"),
        ("good.test", Failed, "550 5.4.4 Host nowhere.good.test not found"),
    ],
)
def test_dns_trouble_becomes_an_outcome(domain: str, kind: type, text: str) -> None:
    with dns_server(ZONE) as server:
        server.resolver.servfail.add("broken.test")
        server.resolver.timeout.add("silent.test")
        server.resolver.junk.add("junk.test")
        outcome = asyncio.run(_deliver_to(domain, server.address))
    assert isinstance(outcome, kind)
    assert str(outcome.reply).startswith(text)


def test_a_cached_connection_the_peer_dropped_is_replaced_not_deferred() -> None:
    """A peer that closed an idle connection must cost nothing but a new connection (the
    stale one fails at the RSET that begins the next transaction, before any content)."""
    sessions: list[int] = []

    async def one_message_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sessions.append(1)
        writer.write(b"220 peer.test ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(EHLO)
        await _lines_until(reader, b"DATA")
        writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
        await _lines_until(reader, b".\r\n")
        writer.write(b"250 2.0.0 queued\r\n")
        await writer.drain()
        # Hang up while the client keeps the connection for reuse, as a peer with a
        # short idle timeout does; the client learns of it only when it reuses it.
        writer.close()

    async def two_deliveries() -> list[dict[int, Outcome]]:
        server = await asyncio.start_server(one_message_then_close, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        remote = RemoteDelivery(
            _client(connection_reuse_time=30.0),
            MxResolver(make_resolver(DnsConfig(nameservers=("127.0.0.1:9",), timeout=1.0))),
            TransportTable({"*": f"smtp:[127.0.0.1]:{port}"}),
            hostname="sender.test",
        )
        try:
            results = []
            for _ in range(2):
                message = _message("bob@example.test")
                results.append(
                    await remote.deliver(message, CONTENT, Remote("example.test"), message.pending)
                )
            return results
        finally:
            await remote.close()
            server.close()

    first, second = asyncio.run(two_deliveries())
    assert isinstance(first[0], Delivered)
    assert isinstance(second[0], Delivered)
    assert len(sessions) == 2
