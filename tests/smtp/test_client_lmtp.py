"""LMTP in the sans-I/O client core (RFC 2033): the final dot earns one reply per accepted
recipient, paired in order; a server that stops short leaves the rest unanswered."""

from __future__ import annotations

import pytest

from posthorn.smtp.client import ClientConnection, ClientWait, Closed, Received


def _replies(conn: ClientConnection) -> list[Received | Closed]:
    out: list[Received | Closed] = []
    while (item := conn.next_reply()) is not ClientWait.NEED_DATA:
        assert isinstance(item, Received | Closed)
        out.append(item)
        if isinstance(item, Closed):
            break
    return out


def test_one_reply_per_accepted_recipient_after_the_dot() -> None:
    conn = ClientConnection()
    out = b"".join(
        conn.send(c)
        for c in ("LHLO me.test", "MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>",
                  "RCPT TO:<c@y.test>", "DATA")
    )  # fmt: skip
    assert out.startswith(b"LHLO me.test\r\n")
    conn.receive_data(
        b"220 lmtp ready\r\n250-lmtp\r\n250 PIPELINING\r\n250 2.1.0 ok\r\n"
        b"250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
    )
    assert [r.label for r in _replies(conn)] == [
        "greeting", "LHLO", "MAIL", "RCPT", "RCPT", "DATA"
    ]  # fmt: skip
    assert conn.send_message(b"Subject: x\r\n\r\n.dot\r\n", replies=2).endswith(
        b"\r\n..dot\r\n.\r\n"
    )
    assert conn.pending == 2
    conn.receive_data(b"250 2.0.0 <b@y.test> saved\r\n552 5.2.2 <c@y.test> over quota\r\n")
    first, second = _replies(conn)
    assert isinstance(first, Received)
    assert isinstance(second, Received)
    assert (first.label, first.reply.code, first.reply.esc) == ("end-of-data", 250, "2.0.0")
    assert (second.reply.code, second.reply.esc) == (552, "5.2.2")
    assert conn.pending == 0


def test_a_server_that_hangs_up_between_replies() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 ready\r\n")
    assert [r.label for r in _replies(conn)] == ["greeting"]
    conn.send_message(b"x\r\n", replies=3)
    conn.receive_data(b"250 2.0.0 saved\r\n")
    conn.receive_data(b"")
    saved, closed = _replies(conn)
    assert isinstance(saved, Received)
    assert closed == Closed(("end-of-data", "end-of-data"))


def test_the_dot_earns_at_least_one_reply() -> None:
    with pytest.raises(RuntimeError):
        ClientConnection().send_message(b"x\r\n", replies=0)
