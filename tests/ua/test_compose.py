"""Composing messages: headers, RFC 2047 words, MIME bodies, envelope (ua/compose.py)."""

from __future__ import annotations

import email
from email import policy

import pytest

from posthorn.address import Address
from posthorn.ua.compose import Attachment, ComposeError, Draft, compose, guess_type

NOW = 742_420_054.0  # Mon, 19 Jul 1993 19:47:34 UTC, the seed's transcript


def _draft(**changes: object) -> Draft:
    base: dict[str, object] = {
        "sender": "Richard Stevens <rstevens@sun.tuc.noao.edu>",
        "to": ("estevens@noao.edu",),
        "subject": "testing",
        "body": "1, 2, 3.\n",
    }
    base.update(changes)
    return Draft(**base)  # type: ignore[arg-type]


def _headers(content: bytes) -> bytes:
    return content.split(b"\r\n\r\n", 1)[0]


def test_user_agent_headers_in_order() -> None:
    composed = compose(_draft(), now=NOW, hostname="sun.tuc.noao.edu", message_id="<1@sun>")
    names = [line.split(b":")[0] for line in _headers(composed.content).split(b"\r\n")]
    assert names[:8] == [
        b"From",
        b"To",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"MIME-Version",
        b"User-Agent",
        b"Content-Type",
    ]
    parsed = email.message_from_bytes(composed.content, policy=policy.default)
    assert parsed["From"] == "Richard Stevens <rstevens@sun.tuc.noao.edu>"
    assert parsed["Message-ID"] == "<1@sun>"
    assert parsed["Date"].datetime.timestamp() == NOW
    assert parsed["User-Agent"].startswith("Posthorn/")
    assert composed.sender == Address("rstevens", "sun.tuc.noao.edu")
    assert b"\r\n" in composed.content
    assert b"\n" not in composed.content.replace(b"\r\n", b"")


def test_message_id_generated_with_hostname() -> None:
    composed = compose(_draft(), now=NOW, hostname="sun.tuc.noao.edu")
    assert composed.message["Message-ID"].endswith("@sun.tuc.noao.edu>")


def test_bcc_only_in_the_envelope() -> None:
    composed = compose(
        _draft(to=("a@x.test, b@x.test",), cc=("c@x.test",), bcc=("secret@x.test",)),
        now=NOW,
        hostname="h.test",
    )
    assert [str(r) for r in composed.recipients] == [
        "a@x.test",
        "b@x.test",
        "c@x.test",
        "secret@x.test",
    ]
    assert b"secret" not in composed.content
    assert b"Bcc" not in composed.content


def test_bcc_only_message_shows_undisclosed_recipients() -> None:
    composed = compose(_draft(to=(), bcc=("secret@x.test",)), now=NOW, hostname="h.test")
    assert b"To: undisclosed-recipients:;\r\n" in composed.content
    assert b"secret" not in composed.content


def test_duplicate_recipients_submitted_once() -> None:
    composed = compose(_draft(to=("a@x.test",), cc=("A <a@x.test>",)), now=NOW, hostname="h.test")
    assert [str(r) for r in composed.recipients] == ["a@x.test"]


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("Keld Jørn Simonsen", "keld@dkuug.dk"),
        ("André Pirard", "PIRARD@vm1.ulg.ac.be"),
        ("Keith Moore", "moore@cs.utk.edu"),
    ],
)
def test_rfc2047_round_trip_of_the_rfcs_names(name: str, address: str) -> None:
    composed = compose(
        _draft(to=(f"{name} <{address}>",), subject=f"Hej {name}"), now=NOW, hostname="h.test"
    )
    head = _headers(composed.content)
    assert head.isascii(), head  # RFC 2047: encoded words, no raw 8-bit in headers
    if not name.isascii():
        assert b"=?utf-8?" in head
    parsed = email.message_from_bytes(composed.content, policy=policy.default)
    assert str(parsed["To"]) == f"{name} <{address}>"
    assert str(parsed["Subject"]) == f"Hej {name}"


def test_non_ascii_body_is_quoted_printable() -> None:
    composed = compose(_draft(body="Grüße, Jørn\n"), now=NOW, hostname="h.test")
    assert b"Content-Transfer-Encoding: quoted-printable" in composed.content
    assert b"Gr=C3=BC=C3=9Fe, J=C3=B8rn" in composed.content
    assert composed.content.isascii()
    # Read back as a mailbox stores it (LF), as the reader sees it.
    parsed = email.message_from_bytes(composed.content.replace(b"\r\n", b"\n"))
    assert parsed.get_payload(decode=True).decode() == "Grüße, Jørn\n"


def test_ascii_body_is_7bit() -> None:
    composed = compose(_draft(), now=NOW, hostname="h.test")
    assert b"Content-Transfer-Encoding: 7bit" in composed.content
    assert composed.content.endswith(b"\r\n\r\n1, 2, 3.\r\n")


def test_attachments_make_multipart_mixed_with_base64() -> None:
    pdf = b"%PDF-1.4\n\x00\xff binary"
    composed = compose(
        _draft(
            attachments=(
                Attachment("report.pdf", pdf),
                Attachment("notes.txt", b"plain\r\ntext\n"),
                Attachment("blob.unknownext", b"\x01\x02"),
            )
        ),
        now=NOW,
        hostname="h.test",
    )
    parsed = email.message_from_bytes(composed.content, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["MIME-Version"] == "1.0"
    body, *parts = list(parsed.iter_parts())
    assert body.get_content_type() == "text/plain"
    assert [p.get_content_type() for p in parts] == [
        "application/pdf",
        "text/plain",
        "application/octet-stream",
    ]
    for part, data in zip(parts, (pdf, b"plain\r\ntext\n", b"\x01\x02"), strict=True):
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_content_disposition() == "attachment"
        assert part.get_payload(decode=True) == data
        assert "MIME-Version" not in part  # RFC 2045 section 4: top level only


def test_attachment_name_with_non_ascii_survives() -> None:
    composed = compose(
        _draft(attachments=(Attachment("résumé.pdf", b"x"),)), now=NOW, hostname="h.test"
    )
    parsed = email.message_from_bytes(composed.content, policy=policy.default)
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "résumé.pdf"
    assert composed.content.isascii()


def test_guess_type() -> None:
    assert guess_type("photo.JPG") == ("image", "jpeg")
    assert guess_type("archive.tar.gz") == ("application", "octet-stream")
    assert guess_type("README") == ("application", "octet-stream")


def test_utf8_address_switches_to_smtputf8() -> None:
    composed = compose(_draft(to=("Jørn <jørn@dkuug.dk>",)), now=NOW, hostname="h.test")
    assert composed.smtputf8
    assert "To: Jørn <jørn@dkuug.dk>".encode() in composed.content
    assert not compose(_draft(), now=NOW, hostname="h.test").smtputf8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": ("nobody",)}, "missing '@domain'"),
        ({"to": ("a@",)}, "cannot parse"),
        ({"to": ()}, "no recipients"),
        ({"to": ("bad local@x.test",)}, "invalid local part"),
        ({"sender": "a@x.test, b@x.test"}, "one address"),
    ],
)
def test_bad_addresses_are_refused_with_a_reason(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        compose(_draft(**changes), now=NOW, hostname="h.test")


def test_line_breaks_in_a_subject_cannot_start_a_header() -> None:
    composed = compose(
        _draft(subject="hello\nBcc: evil@x.test\r\nX: y"), now=NOW, hostname="h.test"
    )
    assert b"Subject: hello Bcc: evil@x.test X: y\r\n" in composed.content
    assert b"\r\nBcc:" not in composed.content
