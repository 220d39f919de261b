"""Try order inside one MX host (RFC 5321 section 5.1): the host has two addresses in
the loopback DNS server, 127.0.0.2 first; whatever goes wrong there (refused, no answer
to the SYN, a greeting that never comes, a 421 greeting, a connection dropped before the
final 250), the message goes to the next address, 127.0.0.1, and arrives exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator

import pytest

from posthorn.delivery.remote import MAX_ADDRESSES
from posthorn.outcome import Delivered, Outcome
from support.dns import dns_server
from support.relay import shared_port
from support.remote import deliver_only, message, remote
from support.smtp_peer import ScriptedPeer

FIRST, SECOND = "127.0.0.2", "127.0.0.1"
ZONE = f"""
multi.test. 300 IN MX 10 mx.multi.test.
mx.multi.test. 300 IN A {FIRST}
mx.multi.test. 300 IN A {SECOND}
"""
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.contextmanager
def _full_backlog(port: int) -> Iterator[None]:
    """A listener on FIRST that never accepts, its backlog full: the kernel drops further
    SYNs, so a connect there times out (as toward a host that is down)."""
    listener = socket.socket()
    listener.bind((FIRST, port))
    listener.listen(0)
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket()
            fillers.append(filler)
            filler.settimeout(0.3)
            try:
                filler.connect((FIRST, port))
            except TimeoutError:
                break  # the queue is full: connects now hang
        else:
            raise AssertionError("the listen backlog never filled")
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # accepts, never greets: the client's greeting timeout fires


async def _busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421 4.3.2 mx.multi.test too busy, try another\r\n")
    await writer.drain()
    writer.close()


async def _drops_before_the_final_reply(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write(b"220 first ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-first\r\n250 PIPELINING\r\n")
    for _ in range(3):  # MAIL, RCPT, DATA
        await reader.readline()
    writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n")
    while await reader.readline() not in (b".\r\n", b""):
        pass
    writer.close()  # the content is all here, but no 250: nothing was delivered


async def _scenario(dns: str, port: int, first: Handler | None) -> tuple[Outcome, ScriptedPeer]:
    good = ScriptedPeer()
    servers = [await asyncio.start_server(good.handle, SECOND, port)]
    if first is not None:
        servers.append(await asyncio.start_server(first, FIRST, port))
    transport = remote(dns=dns, port=port, connect_timeout=0.5, greeting_timeout=0.5)
    return await deliver_only(transport, message("bob@multi.test"), servers), good


@pytest.mark.parametrize(
    ("first", "diagnostic"),
    [
        (None, "Connection refused"),
        ("no answer to SYN", f"connect to mx.multi.test[{FIRST}]:"),
        (_silent, "timeout waiting for a reply"),
        (_busy, "refused to talk to me: 421 4.3.2"),
        (_drops_before_the_final_reply, "lost connection"),
    ],
    ids=["refused", "connect-timeout", "greeting-timeout", "421-greeting", "dropped"],
)
def test_trouble_at_the_first_address_moves_on_to_the_next(
    first: Handler | str | None, diagnostic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "posthorn")
    port = shared_port(FIRST, SECOND)
    with dns_server(ZONE) as dns, contextlib.ExitStack() as stack:
        handler = first
        if first == "no answer to SYN":
            stack.enter_context(_full_backlog(port))
            handler = None
        assert not isinstance(handler, str)
        outcome, good = asyncio.run(_scenario(dns.address, port, handler))
    assert isinstance(outcome, Delivered), outcome
    assert outcome.relay == f"mx.multi.test[{SECOND}]:{port}"
    assert len(good.messages) == 1
    assert len(good.sessions) == 1
    # The first address was tried, and failed for the reason this case is about.
    (line,) = [r.getMessage() for r in caplog.records if f"[{FIRST}]" in r.getMessage()]
    assert diagnostic in line
    if first == "no answer to SYN":
        assert line.endswith("timed out")


def test_every_address_failing_defers_with_the_last_reason() -> None:
    port = shared_port(FIRST, SECOND)

    async def both_busy() -> Outcome:
        servers = [await asyncio.start_server(_busy, host, port) for host in (FIRST, SECOND)]
        transport = remote(dns=dns.address, port=port)
        return await deliver_only(transport, message("bob@multi.test"), servers)

    with dns_server(ZONE) as dns:
        outcome = asyncio.run(both_busy())
    assert not isinstance(outcome, Delivered)
    assert outcome.reply.code == 451
    assert f"mx.multi.test[{SECOND}]:{port} refused to talk to me: 421" in outcome.reply.text


def test_no_more_than_max_addresses_are_tried_over_all_hosts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two hosts of six addresses each where nobody listens: ten connects, not twelve
    # (RFC 5321 section 5.1 lets a client limit the addresses it tries).
    zone = "many.test. 300 IN MX 10 a.many.test.\nmany.test. 300 IN MX 20 b.many.test.\n"
    zone += "".join(f"a.many.test. 300 IN A 127.0.1.{n}\n" for n in range(1, 7))
    zone += "".join(f"b.many.test. 300 IN A 127.0.2.{n}\n" for n in range(1, 7))
    caplog.set_level(logging.INFO, "posthorn")
    port = shared_port("127.0.1.1")

    async def run() -> Outcome:
        return await deliver_only(remote(dns=dns.address, port=port), message("bob@many.test"))

    with dns_server(zone) as dns:
        outcome = asyncio.run(run())
    assert not isinstance(outcome, Delivered)
    tried = [r.getMessage() for r in caplog.records if "Connection refused" in r.getMessage()]
    assert len(tried) == MAX_ADDRESSES == 10
    assert sum("a.many.test[" in line for line in tried) == 6  # the better MX first, whole
