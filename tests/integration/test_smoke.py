"""The first end-to-end path: smtplib -> Posthorn -> queue -> Maildir."""

from __future__ import annotations

from support.server import Server


def test_smtplib_message_lands_in_maildir(server: Server) -> None:
    with server.smtp() as client:
        client.sendmail("alice@example.org", ["bob@localhost"], b"Subject: hi\r\n\r\nhello\r\n")
    (path,) = server.wait_delivered("bob")
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <alice@example.org>\nDelivered-To: bob@localhost\n")
    assert data.endswith(b"Subject: hi\n\nhello\n")
