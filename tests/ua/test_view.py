"""Decoding and rendering for the reader (ua/view.py): RFC 2047, MIME walking."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from posthorn.ua import render, view

# RFC 2047 section 8, the header example (as the seed lecture shows it).
RFC2047_HEADERS = (
    b"From: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>\n"
    b"To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\n"
    b"CC: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
    b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n"
    b"    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\n"
    b"Date: Mon, 19 Jul 1993 12:47:34 -0700\n"
)


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
        (
            "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
            "Keld Jørn Simonsen <keld@dkuug.dk>",
        ),
        (
            "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
            "André Pirard <PIRARD@vm1.ulg.ac.be>",
        ),
        (
            "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n"
            "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
            "If you can read this you understand the example.",
        ),
        # RFC 2047 section 8's table of how whitespace between words is treated.
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        ("plain text", "plain text"),
        ("folded\n text", "folded text"),
    ],
)
def test_decode_words(encoded: str, decoded: str) -> None:
    assert view.decode_words(encoded) == decoded


def test_decode_words_survives_junk() -> None:
    assert view.decode_words("=?x-no-such-charset?q?caf=C3=A9?=") == "café"
    assert view.decode_words("=?utf-8?b?!!!?=") == ""
    assert view.decode_words("Gr\udcc3\udcbc\udcc3\udc9fe") == "Grüße"  # raw UTF-8 header


def test_summary_of_the_rfc_example() -> None:
    summary = view.summarize(RFC2047_HEADERS)
    assert summary.sender == "Keith Moore"
    assert summary.subject == "If you can read this you understand the example."
    assert summary.date is not None
    assert summary.date.isoformat() == "1993-07-19T12:47:34-07:00"


def test_summary_of_raw_utf8_and_missing_fields() -> None:
    summary = view.summarize("From: Jørn <j@x.test>\nSubject: Grüße\n".encode())
    assert (summary.sender, summary.subject, summary.date) == ("Jørn", "Grüße", None)
    assert view.summarize(b"Date: not a date\n") == view.Summary("", "", None)
    assert view.summarize(b"From: bare@x.test\n").sender == "bare@x.test"


def test_listing_line_columns() -> None:
    summary = view.summarize(RFC2047_HEADERS)
    line = view.listing_line(7, "N", summary, 2048)
    assert line.startswith("N    7 ")
    assert "Keith Moore" in line
    assert line.endswith("2.0K  If you can read this you understand the example.")


def test_listing_hides_control_characters() -> None:
    summary = view.Summary("evil\x1b]0;pwned\x07", "a\x1b[2Jb", None)
    line = view.listing_line(1, "", summary, 1)
    assert "\x1b" not in line
    assert "\x07" not in line


def _nested() -> EmailMessage:
    """multipart/mixed: multipart/alternative (plain QP, html base64), a PDF, a forward."""
    inner = EmailMessage()
    inner["From"] = "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>"
    inner["Subject"] = "the original"
    inner.set_content("forwarded body\n")
    outer = EmailMessage()
    outer["From"] = "Keld Jørn Simonsen <keld@dkuug.dk>"
    outer["Subject"] = "Grüße"
    outer.set_content("Grüße aus Kopenhagen, Jørn\n", cte="quoted-printable")
    outer.add_alternative(
        "<html><head><style>p {}</style></head><body><p>Gr&uuml;&szlig;e</p></body></html>",
        subtype="html",
        cte="base64",
    )
    outer.add_attachment(
        b"%PDF-1.4\x00\xff", maintype="application", subtype="pdf", filename="a.pdf"
    )
    outer.add_attachment(inner)
    return outer


def _parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_render_walks_nested_multiparts() -> None:
    rendered = render.render(_parse(_nested()))
    assert rendered.headers == (
        ("From", "Keld Jørn Simonsen <keld@dkuug.dk>"),
        ("Subject", "Grüße"),
    )
    assert rendered.blocks[0] == "Grüße aus Kopenhagen, Jørn\n"
    assert rendered.blocks[1] == "[-- alternative text/html not shown --]\n"
    [pdf, forwarded] = rendered.attachments
    assert (pdf.number, pdf.filename, pdf.content_type) == (1, "a.pdf", "application/pdf")
    assert pdf.payload == b"%PDF-1.4\x00\xff"
    assert forwarded.content_type == "message/rfc822"
    assert b"forwarded body" in forwarded.payload


def test_inline_forwarded_message_is_shown() -> None:
    inner = EmailMessage()
    inner["From"] = "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>"
    inner.set_content("forwarded body\n")
    outer = EmailMessage()
    outer.set_content("see below\n")
    outer.add_attachment(inner, disposition="inline")
    rendered = render.render(_parse(outer))
    assert rendered.blocks == (
        "see below\n",
        "[-- forwarded message --]\nFrom: André Pirard <PIRARD@vm1.ulg.ac.be>\n",
        "forwarded body\n",
        "[-- end of forwarded message --]\n",
    )


def test_html_only_message_shows_its_text() -> None:
    message = EmailMessage()
    message.set_content(
        "<html><head><title>t</title></head><body><p>Hello <b>there</b></p>"
        "<script>alert(1)</script><p>second&nbsp;line</p></body></html>",
        subtype="html",
    )
    (block,) = render.render(_parse(message)).blocks
    assert block == "Hello there\nsecond\xa0line\n"


def test_unknown_charset_and_bad_base64_do_not_raise() -> None:
    raw = (
        b"Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=x-unknown\n"
        b"Content-Transfer-Encoding: base64\n\nSGVsbG8g8J+Ygw=*=\n"
    )
    (block,) = render.render(email.message_from_bytes(raw, policy=policy.default)).blocks
    assert block.startswith("Hello")


def test_render_lines_layout() -> None:
    rendered = render.render(_parse(_nested()))
    lines = render.render_lines(rendered, ["/tmp/a.pdf"])
    assert lines[:3] == ["From: Keld Jørn Simonsen <keld@dkuug.dk>", "Subject: Grüße", ""]
    assert "[-- attachment 1: a.pdf (application/pdf, 10) --]" in lines
    assert lines[-1] == "saved /tmp/a.pdf"


def test_format_size() -> None:
    assert [view.format_size(n) for n in (0, 1023, 1024, 15_000, 3 * 1024**2)] == [
        "0",
        "1023",
        "1.0K",
        "15K",
        "3.0M",
    ]
