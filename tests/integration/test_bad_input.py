"""Bad input: every mistake gets its reply or a clean close; nothing half-received is
queued; the server goes on serving everyone else."""

from __future__ import annotations

import contextlib
import json
import os
import socket

import pytest

from support.raw import RawClient
from support.server import Server

pytestmark = pytest.mark.timeout(60)


def session(server: Server) -> RawClient:
    client = RawClient(server.host, server.port)
    client.reply()
    assert client.command(b"EHLO client.test").startswith("250-")
    return client


def queue_is_empty(server: Server) -> bool:
    result = server.cli("queue", "list", "--json")
    return json.loads(result.stdout) == []


def still_serving(server: Server) -> None:
    with server.smtp() as other:
        assert other.noop()[0] == 250


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"NOOP \x00", "500 5.5.2"),
        (b"MAIL FROM:<a\x00b@example.org>", "500 5.5.2"),
        (b"NOOP \xff\xfe\xfd", "500 5.5.2"),
        ("MAIL FROM:<jörg@example.org>".encode(), "553 5.6.7"),
        (b"X" * 600, "500 5.5.2"),
        (b"MAIL FROM:<" + b"a" * 5000 + b"@example.org>", "500 5.5.2"),
        (b"RCPT TO:<x@mx.test>", "503 5.5.1"),
        (b"DATA", "503 5.5.1"),
        (b"BDAT 6 LAST\r\nQUIT", "503 5.5.1"),  # the chunk "QUIT\r\n" is not a command
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "500 5.5.2"),  # a TLS hello
    ],
)
def test_bad_command_gets_its_reply(server: Server, line: bytes, reply: str) -> None:
    with session(server) as client:
        assert client.command(line).startswith(reply)
        assert client.command(b"NOOP") == "250 2.0.0 Ok"


def test_megabyte_line_is_refused_in_bounded_memory(server: Server) -> None:
    with session(server) as client:
        client.send(b"NOOP " + b"y" * 1_000_000 + b"\r\n")
        assert client.reply().startswith("500 5.5.2")
        assert client.command(b"NOOP") == "250 2.0.0 Ok"


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b".\n"])
def test_smuggled_end_of_data_is_refused(server: Server, smuggle: bytes) -> None:
    """SMTP smuggling: only CRLF.CRLF ends DATA; a message holding a fake end is refused
    whole, and the "second message" after the fake end is never queued."""
    with session(server) as client:
        client.command(b"MAIL FROM:<a@example.org>")
        client.command(b"RCPT TO:<ivan@localhost>")
        assert client.command(b"DATA").startswith("354")
        client.send(
            b"Subject: first\r\n\r\nfirst" + smuggle + b"MAIL FROM:<evil@example.org>\r\n"
            b"RCPT TO:<ivan@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
        )
        assert client.reply().startswith("550 5.6.0")
        assert client.command(b"NOOP") == "250 2.0.0 Ok"
    assert queue_is_empty(server)
    assert server.delivered("ivan") == []


def test_random_garbage_then_others_still_served(server: Server) -> None:
    with RawClient(server.host, server.port) as client:
        client.reply()
        # Whatever it answers, it must close (FIN, or RST while our bytes are still in
        # flight: then our own send or shutdown fails) rather than hang.
        with contextlib.suppress(OSError):
            client.send(os.urandom(200_000))
            client.sock.shutdown(socket.SHUT_WR)
            while client.sock.recv(65536):
                pass
    still_serving(server)


def test_too_many_errors_closes_with_421(server: Server) -> None:
    with session(server) as client:
        client.send(b"FROB\r\n" * 25)
        replies = client.replies(20)
        assert replies[-1].startswith("421 4.7.0")
        assert client.closed()
    still_serving(server)


_TX = b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<jo@localhost>\r\n"


@pytest.mark.parametrize(
    "cut",
    [
        b"",
        b"EHL",
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n",
        _TX + b"DATA\r\n",
        _TX + b"DATA\r\nSubject: x\r\n\r\nline\r\n.",
        _TX + b"BDAT 100 LAST\r\nonly some",
    ],
)
def test_premature_disconnect_queues_nothing(server: Server, cut: bytes) -> None:
    with RawClient(server.host, server.port) as client:
        client.reply()
        client.send(cut)
    still_serving(server)
    assert queue_is_empty(server)
    assert server.delivered("jo") == []


def test_reset_connection_mid_data(server: Server) -> None:
    client = session(server)
    client.command(b"MAIL FROM:<a@example.org>")
    client.command(b"RCPT TO:<kim@localhost>")
    client.command(b"DATA")
    client.send(b"Subject: x\r\n\r\npartial")
    # SO_LINGER 0: close with RST instead of FIN.
    client.sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    client.close()
    still_serving(server)
    assert queue_is_empty(server)
