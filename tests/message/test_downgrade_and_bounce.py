"""8-bit to 7-bit conversion (decoded content unchanged) and DSN composition."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given, settings
from hypothesis import strategies as st

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.message import bounce, downgrade


def _parts(data: bytes) -> list[tuple[str, bytes]]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    out = []
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.append((part.get_content_type(), payload.replace(b"\r\n", b"\n")))
    return out


MULTIPART = (
    b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
    b"--BB\r\nContent-Type: text/plain; charset=latin-1\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\ncaf\xe9\r\n--BB\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain\r\n"
    b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\n\x80\x81 ab\r\n--BB--\r\n"
)


def test_multipart_downgrade_keeps_every_decoded_part() -> None:
    out = downgrade.to_7bit(MULTIPART)
    assert not downgrade.has_8bit(out)
    assert _parts(out) == _parts(MULTIPART)
    assert b"Content-Transfer-Encoding: quoted-printable" in out
    assert b"Content-Transfer-Encoding: base64" in out
    assert out.count(b"\r\n") == out.count(b"\n")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=300))
def test_any_utf8_text_survives_the_downgrade(text: str) -> None:
    body = text.encode("utf-8") + b"\r\n"
    data = (
        b"Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    )
    out = downgrade.to_7bit(data)
    assert not downgrade.has_8bit(out)
    assert _parts(out) == _parts(data)


def test_needs_smtputf8() -> None:
    ascii_env = Envelope(Address("a", "b.test"), (Recipient(Address("c", "d.test")),))
    assert not downgrade.needs_smtputf8(ascii_env, "Subject: é\r\n\r\n".encode())
    utf8_env = Envelope(ascii_env.sender, ascii_env.recipients, smtputf8=True)
    assert downgrade.needs_smtputf8(utf8_env, "Subject: é\r\n\r\n".encode())
    assert not downgrade.needs_smtputf8(utf8_env, "Subject: e\r\n\r\né".encode())
    other = Envelope(Address("a", "b.test"), (Recipient(Address("ç", "d.test")),))
    assert downgrade.needs_smtputf8(other, b"")


def test_dsn_with_ret_hdrs_returns_only_headers() -> None:
    env = Envelope(Address("alice", "a.test"), (Recipient(Address("bob", "b.test")),), ret="HDRS")
    entry = bounce.DsnEntry("bob@b.test", "failed", "5.2.2", "552 5.2.2 mailbox full", "mx.b.test")
    data = bounce.compose(
        hostname="mx.a.test",
        qid="Q",
        envelope=env,
        content=b"Subject: s\r\n\r\nsecret body\r\n",
        entries=[entry],
        now=1e9,
    )
    assert b"secret body" not in data
    report = email.message_from_bytes(data, policy=email.policy.default)
    returned = list(report.iter_parts())[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Subject: s" in returned.get_content()
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@mx.a.test>"
