"""ClientConnection.start_tls: bytes after the 220 to STARTTLS are forgotten (RFC 3207)."""

from __future__ import annotations

import pytest

from posthorn.smtp.client import ClientConnection, ClientWait, Received


def _reply(conn: ClientConnection) -> Received:
    got = conn.next_reply()
    assert isinstance(got, Received), got
    return got


def test_injected_replies_after_220_are_discarded() -> None:
    conn = ClientConnection()
    conn.receive_data(b"220 mx.test ESMTP\r\n")
    assert _reply(conn).label == "greeting"
    conn.send("STARTTLS")
    # An attacker appends a reply in plaintext after the 220: it must never be read as
    # an answer inside the TLS session (the client side of CVE-2011-0411).
    conn.receive_data(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
    assert _reply(conn).reply.code == 220
    conn.start_tls()
    assert conn.next_reply() is ClientWait.NEED_DATA
    conn.send("EHLO client.test")
    conn.receive_data(b"250 mx.test\r\n")
    received = _reply(conn)
    assert (received.label, received.reply.lines) == ("EHLO", ("mx.test",))


def test_start_tls_with_replies_pending_is_a_bug() -> None:
    conn = ClientConnection()
    with pytest.raises(RuntimeError):
        conn.start_tls()  # the greeting has not been read
