"""The sans-I/O client core in memory: reply assembly, pipelining order, peer mistakes,
STARTTLS buffer discard, and the wire form of MAIL and RCPT parameters."""

from __future__ import annotations

from posthorn.address import Address
from posthorn.smtp.client import (
    BadReply,
    ClientConnection,
    ClientWait,
    Closed,
    MailOptions,
    Received,
    mail_command,
    rcpt_command,
)
from posthorn.smtp.extensions import Capabilities, parse_ehlo
from posthorn.smtp.lines import LineReader, TooLong


def _feed_bytewise(conn: ClientConnection, data: bytes) -> list[object]:
    out = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        while (item := conn.next_reply()) is not ClientWait.NEED_DATA:
            out.append(item)
            if isinstance(item, BadReply):
                return out
    return out


def test_multiline_reply_split_into_single_bytes() -> None:
    conn = ClientConnection()
    conn.send("EHLO me.test")
    data = b"220 hi\r\n250-peer.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 DSN\r\n"
    greeting, ehlo = _feed_bytewise(conn, data)
    assert isinstance(greeting, Received)
    assert greeting.label == "greeting"
    assert isinstance(ehlo, Received)
    assert ehlo.label == "EHLO"
    caps = parse_ehlo(ehlo.reply.lines)
    assert caps == Capabilities(size=1000, pipelining=True, dsn=True)


def test_pipelined_replies_pair_with_their_commands_in_order() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 hi\r\n")
    assert isinstance(conn.next_reply(), Received)
    for line in ("MAIL FROM:<a@b.test>", "RCPT TO:<c@d.test>", "DATA"):
        conn.send(line)
    conn.receive_data(b"250 2.1.0 ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n")
    labels = []
    while isinstance(item := conn.next_reply(), Received):
        labels.append((item.label, item.reply.code, item.reply.esc))
    assert labels == [("MAIL", 250, "2.1.0"), ("RCPT", 550, "5.1.1"), ("DATA", 554, "5.5.1")]


def test_peer_mistakes_are_values() -> None:
    conn = ClientConnection()
    assert _feed_bytewise(conn, b"hello\r\n") == [BadReply("not a reply line: b'hello'")]
    conn = ClientConnection()
    (bad,) = _feed_bytewise(conn, b"220-a\r\n250 b\r\n")
    assert isinstance(bad, BadReply)
    assert "changed code" in bad.reason
    conn = ClientConnection()
    conn.receive_data(b"220 a\r\n221 nobody asked\r\n")
    assert isinstance(conn.next_reply(), Received)
    assert isinstance(conn.next_reply(), BadReply)
    conn = ClientConnection()
    conn.receive_data(b"")
    assert conn.next_reply() == Closed(("greeting",))


def test_start_tls_forgets_plaintext_sent_after_the_220() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 hi\r\n")
    conn.next_reply()
    conn.send("STARTTLS")
    conn.receive_data(b"220 go ahead\r\n250 injected reply\r\n")
    assert isinstance(conn.next_reply(), Received)
    conn.start_tls()
    conn.send("EHLO me.test")
    conn.receive_data(b"250 real\r\n")
    item = conn.next_reply()
    assert isinstance(item, Received)
    assert item.reply.lines == ("real",)


def test_mail_and_rcpt_parameters() -> None:
    sender = Address("alice", "example.org")
    assert mail_command(None) == "MAIL FROM:<>"
    assert (
        mail_command(
            sender, MailOptions(size=10, body="8BITMIME", smtputf8=True, ret="HDRS", envid="a b")
        )
        == "MAIL FROM:<alice@example.org> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+20b"
    )
    assert (
        rcpt_command(sender, frozenset({"DELAY", "FAILURE"}), "rfc822;x=y@example.org")
        == "RCPT TO:<alice@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x+3Dy@example.org"
    )


def test_an_overlong_line_does_not_swallow_the_next() -> None:
    buffer = bytearray(b"x" * 600 + b"\r\nNOOP\r\n")
    reader = LineReader(buffer, 512)
    assert reader.next_line() is TooLong.LINE
    assert reader.next_line() == b"NOOP"
    buffer += b"y" * 600
    assert reader.next_line() is None
    buffer += b"tail\r\nQUIT\r\n"
    assert reader.next_line() is TooLong.LINE
    assert reader.next_line() == b"QUIT"
