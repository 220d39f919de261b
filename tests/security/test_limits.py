"""Limits and hardening against a real server: connections per IP and overall, message
rate, errors per session, the tarpit, idle and whole-session timeouts (slowloris), header
limits. Clients are untrusted here (trusted_networks = []) unless a test says otherwise."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable

from support.raw import Raw
from support.server import Server, wait_for

UNTRUSTED = (
    "[relay]\ntrusted_networks = []\n[mailauth]\nspf = 'none'\ndkim = 'none'\ndmarc = 'none'\n"
)


def _server(make_server: Callable[..., Server], limits: str, extra: str = "") -> Server:
    return make_server(UNTRUSTED + "[limits]\n" + limits + extra, "--hold")


def test_connections_per_ip(make_server: Callable[..., Server]) -> None:
    server = _server(make_server, "max_connections_per_ip = 2\n")
    first, second = _greeted(server.port), _greeted(server.port)
    try:
        with Raw(server.port) as third:
            reply = third.reply()
            assert reply.startswith(b"421 4.7.0"), reply
            assert b"too many connections from 127.0.0.1" in reply
            assert third.closed()
        first.command(b"QUIT")
        assert first.closed()
    finally:
        first.close()
        second.close()

    _greeted(server.port).close()


def _greeted(port: int) -> Raw:
    """A session that got its 220 (the harness's start-up probe may hold a slot briefly)."""
    found: list[Raw] = []

    def attempt() -> bool:
        raw = Raw(port)
        if raw.reply().startswith(b"220"):
            found.append(raw)
            return True
        raw.close()
        return False

    wait_for(attempt, what="a greeting")
    return found[0]


def test_connection_limit_overall(make_server: Callable[..., Server]) -> None:
    server = make_server("[server]\nhostname = 'mx.test'\nmax_connections = 2\n", "--hold")
    first, second = _greeted(server.port), _greeted(server.port)
    try:
        with Raw(server.port) as third:
            reply = third.reply()
            assert reply.startswith(b"421 4.7.0"), reply
            assert b"too many connections" in reply
    finally:
        first.close()
        second.close()


def test_trusted_clients_are_exempt_from_per_ip_limits(make_server: Callable[..., Server]) -> None:
    server = make_server("[limits]\nmax_connections_per_ip = 1\nmessages_per_minute = 1\n")
    with _greeted(server.port) as first, _greeted(server.port) as second:
        assert first.command(b"NOOP").startswith(b"250")
        second.command(b"EHLO c.test")
        for _ in range(3):
            assert second.command(b"MAIL FROM:<a@example.org>").startswith(b"250")
            assert second.command(b"RSET").startswith(b"250")


def test_messages_per_minute(make_server: Callable[..., Server]) -> None:
    server = _server(make_server, "messages_per_minute = 3\n")
    with server.smtp() as client:
        client.ehlo()
        for _ in range(3):
            assert client.mail("alice@example.org")[0] == 250
            client.rset()
        code, text = client.mail("alice@example.org")
        assert code == 450
        assert text.startswith(b"4.7.1")
    with server.smtp() as client:  # the count is per client IP, not per session
        client.ehlo()
        assert client.mail("alice@example.org")[0] == 450


def test_too_many_errors_closes_with_421(make_server: Callable[..., Server]) -> None:
    server = _server(make_server, "max_errors = 3\n")
    with Raw(server.port) as raw:
        raw.reply()
        assert raw.command(b"BOGUS").startswith(b"500")
        assert raw.command(b"MAIL FROM:<nobody").startswith(b"5")
        reply = raw.command(b"ANOTHER")
        assert reply.startswith(b"421 4.7.0"), reply
        assert raw.closed()
    with server.smtp() as client:  # everyone else is still served
        assert client.noop()[0] == 250


def test_tarpit_delays_refused_recipients(make_server: Callable[..., Server]) -> None:
    delay = 0.4
    server = _server(make_server, f"tarpit_after = 2\ntarpit_delay = {delay}\n")
    with server.smtp() as client:
        client.ehlo()
        client.mail("mallory@example.org")
        timings = []
        for i in range(4):
            start = time.monotonic()
            assert client.rcpt(f"guess{i}@example.net")[0] == 554
            timings.append(time.monotonic() - start)
    # The first two are answered at once, the rest only after the delay (a lower bound).
    assert timings[2] >= delay
    assert timings[3] >= delay
    assert timings[0] < delay


def test_idle_client_is_dropped(make_server: Callable[..., Server]) -> None:
    server = _server(make_server, "", "[smtp]\nidle_timeout = 0.5\n")
    with Raw(server.port) as raw:
        raw.reply()
        raw.command(b"EHLO c.test")
        assert raw.closed(timeout=10)
        assert raw.buffer.startswith(b"421 4.4.2"), raw.buffer
        assert b"timeout exceeded" in raw.buffer


def test_slowloris_is_dropped_at_the_session_limit(make_server: Callable[..., Server]) -> None:
    """A client that sends a byte every 0.1 s never trips the idle timeout; the session
    limit stops it."""
    server = _server(make_server, "session_timeout = 1.5\n", "[smtp]\nidle_timeout = 5\n")
    with Raw(server.port) as raw:
        raw.reply()
        start = time.monotonic()
        drip = b"NOOP" * 1000
        for i in range(len(drip)):
            raw.send(drip[i : i + 1])
            if raw.closed(timeout=0.1):  # waits up to 0.1 s for the server to give up
                break
        elapsed = time.monotonic() - start
    assert raw.buffer.startswith(b"421 4.4.2"), raw.buffer
    assert b"session time limit exceeded" in raw.buffer
    assert 1.4 <= elapsed < 10


def test_header_limits(make_server: Callable[..., Server]) -> None:
    server = _server(make_server, "max_headers = 10\nmax_header_size = 2000\n")
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(11)) + b"\r\nbody\r\n"
    folded = b"Subject: a\r\n" + b" folded\r\n" * 20 + b"\r\nbody\r\n"
    huge = b"Subject: " + b"x" * 900 + b"\r\n" + (b"X-Big: " + b"y" * 900 + b"\r\n") * 2 + b"\r\n"
    with server.smtp() as client:
        client.ehlo()
        for content, expected in ((many, 552), (folded, 250), (huge, 552)):
            client.mail("alice@example.org")
            client.rcpt("bob@mx.test")
            code, text = client.data(content)
            assert code == expected, (content[:30], text)
            if code == 552:
                assert text.startswith(b"5.3.4")


def test_smtplib_survives_a_refusal_storm(make_server: Callable[..., Server]) -> None:
    """After the error limit closes one session, a fresh session works normally."""
    server = _server(make_server, "max_errors = 2\ntarpit_delay = 0\n")
    with server.smtp() as client:
        client.ehlo()
        client.mail("m@example.org")
        client.rcpt("x@example.net")
        try:
            code = client.rcpt("y@example.net")[0]
        except smtplib.SMTPServerDisconnected:
            code = 421
        assert code == 421
    with server.smtp() as client:
        client.ehlo()
        client.mail("m@example.org")
        assert client.rcpt("bob@mx.test")[0] == 250
