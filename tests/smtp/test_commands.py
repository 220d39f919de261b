"""Command grammar (RFC 5321 section 4.1) and ESMTP parameters, line by line."""

from __future__ import annotations

import pytest

from posthorn.address import Address
from posthorn.smtp.commands import ParseContext, parse_command
from posthorn.smtp.events import (
    Auth,
    Bdat,
    Data,
    Ehlo,
    Etrn,
    Expn,
    Helo,
    Help,
    Invalid,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Turn,
    Vrfy,
)
from posthorn.smtp.extensions import Capabilities

CAPS = Capabilities(
    size=1000,
    pipelining=True,
    eightbitmime=True,
    smtputf8=True,
    enhancedstatuscodes=True,
    chunking=True,
    dsn=True,
    auth=("PLAIN",),
)
ESMTP = ParseContext(CAPS, esmtp=True)
HELO_CTX = ParseContext(CAPS, esmtp=False)
UTF8 = ParseContext(CAPS, esmtp=True, utf8=True)


def parse(line: bytes, ctx: ParseContext = ESMTP) -> object:
    return parse_command(line, ctx)


def code(line: bytes, ctx: ParseContext = ESMTP) -> tuple[int, str | None]:
    result = parse(line, ctx)
    assert isinstance(result, Invalid), result
    return result.reply.code, result.reply.esc


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"HELO sun.tuc.noao.edu.", Helo("sun.tuc.noao.edu.")),
        (b"helo [192.0.2.1]", Helo("[192.0.2.1]")),
        (b"EHLO client.test", Ehlo("client.test")),
        (b"DATA", Data()),
        (b"RSET", Rset()),
        (b"NOOP", Noop("")),
        (b"NOOP anything at all", Noop("anything at all")),
        (b"QUIT", Quit()),
        (b"HELP", Help("")),
        (b"HELP MAIL", Help("MAIL")),
        (b"VRFY rstevens", Vrfy("rstevens")),
        (b"EXPN staff", Expn("staff")),
        (b"TURN", Turn()),
        (b"STARTTLS", StartTls()),
        (b"AUTH plain dGVzdAB0ZXN0AHBhc3M=", Auth("PLAIN", "dGVzdAB0ZXN0AHBhc3M=")),
        (b"ETRN @example.org", Etrn("@example.org")),
        (b"BDAT 100", Bdat(100, False)),
        (b"BDAT 0 LAST", Bdat(0, True)),
        (b"bdat 7 last", Bdat(7, True)),
    ],
)
def test_simple_commands(line: bytes, expected: object) -> None:
    assert parse(line) == expected


def test_mail_from_variants() -> None:
    assert parse(b"MAIL FROM:<alice@example.org>") == Mail(Address("alice", "example.org"))
    assert parse(b"mail from: <alice@example.org>") == Mail(Address("alice", "example.org"))
    assert parse(b"MAIL FROM:<>") == Mail(None)
    # RFC 5321 appendix C: source routes are accepted and ignored.
    assert parse(b"MAIL FROM:<@relay.test,@other.test:alice@example.org>") == Mail(
        Address("alice", "example.org")
    )
    assert parse(b"SEND FROM:<a@b.test>") == Mail(Address("a", "b.test"), verb="SEND")
    quoted = parse(b'MAIL FROM:<"odd >name"@example.org>')
    assert isinstance(quoted, Mail)
    assert quoted.sender == Address("odd >name", "example.org")


def test_mail_parameters() -> None:
    mail = parse(b"MAIL FROM:<a@b.test> SIZE=500 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1")
    assert isinstance(mail, Mail)
    params = mail.params
    assert (params.size, params.body, params.ret, params.envid) == (
        500,
        "8BITMIME",
        "HDRS",
        "QQ+1",
    )
    utf8 = parse("MAIL FROM:<jörg@bücher.example> SMTPUTF8".encode())
    assert isinstance(utf8, Mail)
    assert utf8.params.smtputf8


def test_rcpt_parameters() -> None:
    rcpt = parse(
        b"RCPT TO:<bob@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+2Bx@example.org"
    )
    assert isinstance(rcpt, Rcpt)
    assert rcpt.params.notify == frozenset({"SUCCESS", "DELAY"})
    assert rcpt.params.orcpt == "rfc822;bob+x@example.org"
    assert parse(b"RCPT TO:<Postmaster>") == Rcpt(Address("Postmaster", ""))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"FOO bar", (500, "5.5.1")),
        (b"", (500, "5.5.1")),
        (b"MAIL alice@example.org", (501, "5.5.4")),
        (b"MAIL FROM:alice@example.org", (501, "5.5.4")),
        (b"MAIL FROM:<alice@example.org", (501, "5.5.4")),
        (b"MAIL FROM:<not an address>", (501, "5.1.7")),
        (b"RCPT TO:<bob@>", (501, "5.1.3")),
        (b"RCPT bob@example.org", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> SIZE=2000", (552, "5.3.4")),
        (b"MAIL FROM:<a@b.test> SIZE=abc", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> BODY=BINARYMIME", (555, "5.5.4")),
        (b"MAIL FROM:<a@b.test> BODY=9BIT", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> FOO=bar", (555, "5.5.4")),
        (b"MAIL FROM:<a@b.test> SIZE=1 SIZE=2", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> SMTPUTF8=yes", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> RET=ALL", (501, "5.5.4")),
        (b"MAIL FROM:<a@b.test> ENVID=bad+zz", (501, "5.5.4")),
        (b"RCPT TO:<b@c.test> NOTIFY=NEVER,SUCCESS", (501, "5.5.4")),
        (b"RCPT TO:<b@c.test> ORCPT=nosemicolon", (501, "5.5.4")),
        (b"HELO", (501, "5.5.4")),
        (b"EHLO two words", (501, "5.5.4")),
        (b"DATA now", (501, "5.5.4")),
        (b"QUIT please", (501, "5.5.4")),
        (b"VRFY", (501, "5.5.4")),
        (b"BDAT", (501, "5.5.4")),
        (b"BDAT x", (501, "5.5.4")),
        (b"BDAT 10 FIRST", (501, "5.5.4")),
        (b"NOOP \x00", (500, "5.5.2")),
        (b"NOOP \xff\xfe", (500, "5.5.2")),
        ("RSET ü".encode(), (500, "5.5.2")),
        # RFC 6531: a UTF-8 address needs the SMTPUTF8 parameter.
        ("MAIL FROM:<jörg@bücher.example>".encode(), (553, "5.6.7")),
        ("RCPT TO:<jörg@bücher.example>".encode(), (553, "5.6.7")),
    ],
)
def test_errors(line: bytes, expected: tuple[int, str]) -> None:
    assert code(line) == expected


def test_parameters_need_ehlo() -> None:
    assert code(b"MAIL FROM:<a@b.test> SIZE=10", HELO_CTX) == (555, "5.5.4")
    assert code(b"RCPT TO:<a@b.test> NOTIFY=NEVER", HELO_CTX) == (555, "5.5.4")


def test_utf8_recipient_in_utf8_transaction() -> None:
    rcpt = parse("RCPT TO:<jörg@bücher.example>".encode(), UTF8)
    assert isinstance(rcpt, Rcpt)
    assert rcpt.recipient.domain_key == "xn--bcher-kva.example"


def test_unadvertised_extension_parameters_are_unrecognised() -> None:
    bare = ParseContext(Capabilities(), esmtp=True)
    for line in (b"MAIL FROM:<a@b.test> SIZE=1", b"MAIL FROM:<a@b.test> BODY=8BITMIME"):
        assert code(line, bare) == (555, "5.5.4")
