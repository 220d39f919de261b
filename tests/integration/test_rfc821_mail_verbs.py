"""RFC 821's SEND, SOML and SAML through the real server. RFC 821 section 3.4 has them
deliver to a user's terminal (SOML and SAML fall back to the mailbox); Posthorn has no
terminals, so each behaves as MAIL: 250, then RCPT and DATA queue the message and it
lands in the Maildir."""

from __future__ import annotations

import pytest

from support.raw import RawClient
from support.server import Server

pytestmark = pytest.mark.timeout(60)

VERBS = ("SEND", "SOML", "SAML")


def _transaction(client: RawClient, verb: str, user: str) -> str:
    """One whole transaction opened by `verb`; the reply to the final dot."""
    assert client.command(f"{verb} FROM:<{verb.lower()}@example.org>".encode()) == "250 2.1.0 Ok"
    assert client.command(f"RCPT TO:<{user}@localhost>".encode()) == "250 2.1.5 Ok"
    assert client.command(b"DATA").startswith("354 ")
    client.send(f"Subject: {verb}\r\n\r\n..opened by {verb}\r\n.\r\n".encode())
    return client.reply()


def test_send_soml_saml_behave_as_mail(server: Server) -> None:
    """Each verb, after HELO (RFC 821's dialogue) and after EHLO, opens a transaction
    whose message is delivered with the verb's sender as Return-Path."""
    with RawClient(server.host, server.port) as client:
        assert client.reply().startswith("220 ")
        assert client.command(b"HELO client.test").startswith("250 ")
        for verb in VERBS:
            assert _transaction(client, verb, f"helo{verb.lower()}").startswith(
                "250 2.0.0 Ok: queued as "
            )
        assert client.command(b"EHLO client.test").startswith("250-")
        for verb in VERBS:
            assert _transaction(client, verb, f"ehlo{verb.lower()}").startswith(
                "250 2.0.0 Ok: queued as "
            )
        assert client.command(b"QUIT") == "221 2.0.0 Bye"
    for prefix in ("helo", "ehlo"):
        for verb in VERBS:
            (path,) = server.wait_delivered(f"{prefix}{verb.lower()}")
            data = path.read_bytes()
            assert data.startswith(f"Return-Path: <{verb.lower()}@example.org>\n".encode())
            # Dot-unstuffed and CRLF -> LF, as for MAIL.
            assert data.endswith(f"Subject: {verb}\n\n.opened by {verb}\n".encode())


def test_send_is_sequenced_like_mail(server: Server) -> None:
    """Nested inside a transaction, or before HELO, SEND gets MAIL's 503 5.5.1; with
    ESMTP parameters it is parsed as MAIL (SIZE over the limit: 552 5.3.4)."""
    with RawClient(server.host, server.port) as client:
        assert client.reply().startswith("220 ")
        assert client.command(b"SEND FROM:<a@example.org>").startswith("503 5.5.1 ")
        assert client.command(b"EHLO client.test").startswith("250-")
        assert client.command(b"SOML FROM:<a@example.org> SIZE=999999999999").startswith(
            "552 5.3.4 "
        )
        assert client.command(b"SAML FROM:<a@example.org>") == "250 2.1.0 Ok"
        assert client.command(b"SEND FROM:<a@example.org>").startswith("503 5.5.1 ")
        assert client.command(b"RSET").startswith("250 ")
        assert client.command(b"SEND FROM:<a@example.org>") == "250 2.1.0 Ok"
