"""The client core: reply assembly, the pipelining FIFO, and a client/server pair in memory."""

from __future__ import annotations

from posthorn.smtp.client import BadReply, ClientConnection, ClientWait, Closed, Received
from posthorn.smtp.extensions import Capabilities, parse_ehlo
from posthorn.smtp.reply import Reply
from support.coredriver import Driver


def replies(client: ClientConnection) -> list[object]:
    out = []
    while True:
        item = client.next_reply()
        if item is ClientWait.NEED_DATA:
            return out
        out.append(item)
        if not isinstance(item, Received):
            return out


def test_multiline_reply_and_labels() -> None:
    client = ClientConnection()
    client.receive_data(b"220 mx.test ESMTP\r\n")
    client.send("EHLO c.test")
    client.receive_data(b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n")
    greeting, ehlo = replies(client)
    assert isinstance(greeting, Received)
    assert greeting.label == "greeting"
    assert isinstance(ehlo, Received)
    assert ehlo.label == "EHLO"
    caps = parse_ehlo(ehlo.reply.lines)
    assert caps.pipelining
    assert caps.size == 1000


def test_enhanced_codes_are_split_off() -> None:
    client = ClientConnection()
    client.receive_data(b"550-5.1.1 no such\r\n550 5.1.1 user\r\n")
    (got,) = replies(client)
    assert isinstance(got, Received)
    assert got.reply == Reply(550, "5.1.1", ("no such", "user"))


def test_reply_split_across_packets() -> None:
    client = ClientConnection()
    for piece in (b"2", b"20 mx", b".test\r", b"\n"):
        assert replies(client) == []
        client.receive_data(piece)
    (got,) = replies(client)
    assert isinstance(got, Received)
    assert got.reply.code == 220


def test_garbage_and_mismatched_codes_are_bad_replies() -> None:
    client = ClientConnection()
    client.receive_data(b"hello there\r\n")
    assert replies(client) == [BadReply("not a reply line: b'hello there'")]
    client = ClientConnection()
    client.receive_data(b"250-one\r\n451 two\r\n")
    (bad,) = replies(client)
    assert isinstance(bad, BadReply)
    assert "changed code" in bad.reason


def test_unexpected_reply_and_close() -> None:
    client = ClientConnection()
    client.receive_data(b"220 hi\r\n250 extra\r\n")
    got = replies(client)
    assert isinstance(got[-1], BadReply)
    client = ClientConnection()
    client.send("NOOP")
    client.receive_data(b"")
    assert client.next_reply() == Closed(("greeting", "NOOP"))


def test_pipelined_transaction_against_the_server_core() -> None:
    """Client core and server core talking with no socket (like h11's ConnectionPair)."""
    server = Driver()
    client = ClientConnection()
    wire = client.send("EHLO c.test")
    wire += client.send("MAIL FROM:<a@b.test> BODY=8BITMIME")
    wire += client.send("RCPT TO:<x@y.test>")
    wire += client.send("DATA")
    server.feed(wire)
    message = b"Subject: t\r\n\r\n.starts with a dot\r\n"
    server.feed(client.send_message(message))
    assert server.content == message
    client.receive_data(bytes(server.out))
    got = replies(client)
    assert [(r.label, r.reply.code) for r in got if isinstance(r, Received)] == [
        ("greeting", 220), ("EHLO", 250), ("MAIL", 250), ("RCPT", 250), ("DATA", 354),
        ("end-of-data", 250),
    ]  # fmt: skip


def test_bdat_encoding() -> None:
    client = ClientConnection()
    assert client.send_chunk(b"abc", last=True) == b"BDAT 3 LAST\r\nabc"
    assert client.pending == 2


def test_capabilities_render_and_parse_round_trip() -> None:
    caps = Capabilities(
        size=5000, pipelining=True, eightbitmime=True, smtputf8=True, dsn=True,
        chunking=True, enhancedstatuscodes=True, starttls=True, auth=("PLAIN", "LOGIN"),
    )  # fmt: skip
    assert parse_ehlo(["mx.test", *caps.keywords()]) == caps
    legacy = parse_ehlo(["mx", "AUTH=LOGIN PLAIN", "X-FOO bar"])
    assert legacy.auth == ("LOGIN", "PLAIN")
    assert legacy.other == ("X-FOO bar",)
