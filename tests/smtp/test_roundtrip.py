"""Round trips between the two halves of the sans-I/O core, as hypothesis properties.

What the server writes (`Reply.to_bytes`) the client core reads back as the same reply;
what the client core writes (`mail_command`, `rcpt_command`) the server's grammar
(`parse_command`) reads back as the same envelope; xtext (RFC 3461 section 4) decodes
to what was encoded. Plus the RFC 3461 examples, literally.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from posthorn.address import Address
from posthorn.smtp import xtext
from posthorn.smtp.client import (
    ClientConnection,
    ClientWait,
    MailOptions,
    Received,
    mail_command,
    rcpt_command,
)
from posthorn.smtp.commands import ParseContext, parse_command
from posthorn.smtp.events import Mail, MailParams, Rcpt, RcptParams
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply, parse_reply_line, split_esc

# SIZE with no fixed limit (RFC 1870 section 4: "SIZE 0"), so any declared size parses.
CAPS = Capabilities(size=0, eightbitmime=True, smtputf8=True, dsn=True, pipelining=True)

# Text anywhere in a reply line or a parameter: any character but line breaks and the
# surrogates that UTF-8 cannot carry.
_TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")

# -- replies ---------------------------------------------------------------------------


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    code = draw(st.integers(200, 599))
    esc = None
    if str(code)[0] in "245" and draw(st.booleans()):
        # RFC 3463 section 2: class.subject.detail, the class that of the reply code.
        subject, detail = draw(st.integers(0, 999)), draw(st.integers(0, 999))
        esc = f"{str(code)[0]}.{subject}.{detail}"
    # `to_bytes` drops trailing blanks (nothing may follow the text), so no line has any.
    line = st.text(_TEXT_CHARS, max_size=60).map(lambda s: s.rstrip(" "))
    lines = tuple(draw(st.lists(line, min_size=1, max_size=6)))
    if esc is None:
        # A first line that itself starts with an enhanced code would read back as one:
        # the wire form cannot tell them apart (RFC 2034 section 4), so none is drawn.
        assume(split_esc(code, lines[0])[0] is None)
    return Reply(code, esc, lines)


def _feed(conn: ClientConnection, wire: bytes, cuts: list[int]) -> list[object]:
    """Feed `wire` in pieces of the sizes in `cuts` (the rest at once); all replies out."""
    out: list[object] = []
    at = 0
    for size in [*cuts, len(wire)]:
        piece = wire[at : at + size]
        at += size
        if not piece:
            continue  # b"" would tell the core that the peer closed
        conn.receive_data(piece)
        while (item := conn.next_reply()) is not ClientWait.NEED_DATA:
            out.append(item)
            if not isinstance(item, Received):
                return out  # a BadReply or Closed repeats forever: stop at the first
    return out


@settings(max_examples=300)
@given(
    st.lists(replies(), min_size=1, max_size=5),
    st.lists(st.integers(1, 40), max_size=20),
)
def test_replies_read_back_as_written_in_any_split(batch: list[Reply], cuts: list[int]) -> None:
    """A greeting and pipelined replies, cut anywhere, come out equal and in order, each
    paired with the command it answers (RFC 2920 section 3.1)."""
    conn = ClientConnection()
    labels = ["greeting"] + [f"C{i}" for i in range(1, len(batch))]
    for label in labels[1:]:
        conn.send("NOOP", label)
    out = _feed(conn, b"".join(reply.to_bytes() for reply in batch), cuts)
    assert out == [Received(label, reply) for label, reply in zip(labels, batch, strict=True)]
    assert conn.pending == 0


@given(replies())
def test_every_reply_line_parses_with_the_same_code(reply: Reply) -> None:
    """Each rendered line is one reply line: the code, '-' on all but the last (RFC 5321
    section 4.2.1), and the enhanced code on every line (RFC 2034 section 4)."""
    lines = reply.to_bytes().split(b"\r\n")
    assert lines[-1] == b""
    parsed = [parse_reply_line(line + b"\r\n") for line in lines[:-1]]
    assert [code for code, _, _ in parsed] == [reply.code] * len(reply.lines)
    assert [last for _, last, _ in parsed] == [False] * (len(reply.lines) - 1) + [True]
    for (_, _, text), line in zip(parsed, reply.lines, strict=True):
        assert text == (f"{reply.esc} {line}".rstrip(" ") if reply.esc else line)


# -- MAIL and RCPT ----------------------------------------------------------------------

# Local parts: any printable ASCII (quoted when it is not a dot-atom: spaces, '"', '\',
# '<', '>', '@', ...), or UTF-8 (RFC 6531 section 3.3) which needs SMTPUTF8.
_ascii_local = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=24
)
_utf8_local = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=16,
)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_domains = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(lambda ip: f"[{ip}]"),
    st.ip_addresses(v=6).map(lambda ip: f"[IPv6:{ip}]"),
    st.sampled_from(["Example.ORG", "bücher.example", "例え.テスト"]),
)
addresses = st.builds(Address, st.one_of(_ascii_local, _utf8_local), _domains)


@st.composite
def mail_options(draw: st.DrawFn, sender: Address | None) -> MailOptions:
    envid = draw(st.none() | st.text(_TEXT_CHARS, min_size=1, max_size=30))
    # RFC 3461 section 4.4: ENVID is at most 100 characters on the wire.
    assume(envid is None or len(xtext.encode(envid)) <= 100)
    needs_utf8 = sender is not None and sender.needs_smtputf8
    return MailOptions(
        size=draw(st.none() | st.integers(0, 10**15)),
        body=draw(st.sampled_from([None, "7BIT", "8BITMIME"])),
        smtputf8=needs_utf8 or draw(st.booleans()),
        ret=draw(st.sampled_from([None, "FULL", "HDRS"])),
        envid=envid,
    )


@settings(max_examples=300)
@given(st.data(), st.none() | addresses, st.sampled_from(["MAIL", "SEND", "SOML", "SAML"]))
def test_mail_command_parses_back(data: st.DataObject, sender: Address | None, verb: str) -> None:
    """Whatever sender and parameters the client writes, the server reads the same;
    RFC 821's SEND, SOML and SAML share MAIL's grammar."""
    options = data.draw(mail_options(sender))
    line = mail_command(sender, options)
    assert line.startswith("MAIL FROM:<")
    line = verb + line[4:]
    parsed = parse_command(line.encode("utf-8"), ParseContext(CAPS, esmtp=True))
    params = MailParams(
        options.size, options.body, options.smtputf8, options.ret, options.envid, None
    )
    assert parsed == Mail(sender, params, verb), line


_notify = st.one_of(
    st.just(frozenset({"NEVER"})),
    st.sets(st.sampled_from(["SUCCESS", "FAILURE", "DELAY"]), min_size=1).map(frozenset),
)
_addr_type = st.one_of(
    st.sampled_from(["rfc822", "utf-8", "x400"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,9}", fullmatch=True),
)
_orcpt = st.builds(
    lambda kind, original: f"{kind};{original}", _addr_type, st.text(_TEXT_CHARS, min_size=1)
)


@settings(max_examples=300)
@given(addresses, st.none() | _notify, st.none() | _orcpt, st.booleans())
def test_rcpt_command_parses_back(
    recipient: Address, notify: frozenset[str] | None, orcpt: str | None, utf8: bool
) -> None:
    """Recipient, NOTIFY and ORCPT (xtext on the wire) read back as written."""
    line = rcpt_command(recipient, notify, orcpt)
    ctx = ParseContext(CAPS, esmtp=True, utf8=utf8 or recipient.needs_smtputf8)
    parsed = parse_command(line.encode("utf-8"), ctx)
    assert parsed == Rcpt(recipient, RcptParams(notify, orcpt)), line


def test_quoted_local_parts_on_the_wire() -> None:
    """The quoting the properties rely on, spelled out (RFC 5321 section 4.1.2)."""
    sender = Address("john doe<x>", "example.org")
    line = mail_command(sender, MailOptions(size=10))
    assert line == 'MAIL FROM:<"john doe<x>"@example.org> SIZE=10'
    assert parse_command(line.encode(), ParseContext(CAPS, esmtp=True)) == Mail(
        sender, MailParams(size=10)
    )
    recipient = Address('a"b\\c', "example.org")
    assert rcpt_command(recipient) == 'RCPT TO:<"a\\"b\\\\c"@example.org>'


# -- xtext ------------------------------------------------------------------------------

# RFC 3461 section 4: xtext = *( xchar / hexchar ), xchar = "!".."~" but "+" and "=",
# hexchar = "+" two upper-case hex digits.
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*\Z")


@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_xtext_round_trip(text: str) -> None:
    encoded = xtext.encode(text)
    assert _XTEXT.match(encoded), encoded
    assert xtext.decode(encoded) == text


@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E)))
def test_xtext_leaves_xchars_alone(text: str) -> None:
    """Printable ASCII but '+' and '=' passes unchanged; those two always become hex."""
    expected = text.replace("+", "+2B").replace("=", "+3D")
    assert xtext.encode(text) == expected


@pytest.mark.parametrize(
    ("decoded", "encoded"),
    [
        # RFC 3461 section 6's example dialogue: ENVID and ORCPT values.
        ("QQ314159", "QQ314159"),
        ("Bob@Big-Box.COM", "Bob@Big-Box.COM"),
        ("Dana@Ivory.EDU", "Dana@Ivory.EDU"),
        # Section 4: '+', '=', space and control characters are hexchars.
        ("a+b", "a+2Bb"),
        ("k=v", "k+3Dv"),
        ("Joe User@example.com", "Joe+20User@example.com"),
        ("tab\there", "tab+09here"),
        # Octets beyond ASCII are hex too: one hexchar per UTF-8 octet.
        ("jörg", "j+C3+B6rg"),
    ],
)
def test_xtext_rfc3461_examples(decoded: str, encoded: str) -> None:
    assert xtext.encode(decoded) == encoded
    assert xtext.decode(encoded) == decoded


@pytest.mark.parametrize("bad", ["+", "a+", "+4", "+2b", "+G0", "x+ZZy"])
def test_xtext_malformed(bad: str) -> None:
    """'+' must be followed by two upper-case hex digits (RFC 3461 section 4)."""
    with pytest.raises(ValueError, match="malformed xtext"):
        xtext.decode(bad)


def test_rfc3461_example_dialogue_parses() -> None:
    """RFC 3461 section 6's MAIL and RCPT lines, as the server reads them."""
    ctx = ParseContext(CAPS, esmtp=True)
    mail = parse_command(b"MAIL FROM:<Alice@Pure-Heart.ORG> RET=HDRS ENVID=QQ314159", ctx)
    alice = Address("Alice", "Pure-Heart.ORG")
    assert mail == Mail(alice, MailParams(ret="HDRS", envid="QQ314159"))
    assert mail_command(alice, MailOptions(ret="HDRS", envid="QQ314159")) == (
        "MAIL FROM:<Alice@Pure-Heart.ORG> RET=HDRS ENVID=QQ314159"
    )
    line = b"RCPT TO:<Dana@Ivory.EDU> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dana@Ivory.EDU"
    dana = Address("Dana", "Ivory.EDU")
    params = RcptParams(frozenset({"SUCCESS", "FAILURE"}), "rfc822;Dana@Ivory.EDU")
    assert parse_command(line, ctx) == Rcpt(dana, params)
    assert rcpt_command(dana, params.notify, params.orcpt).encode() == line
    assert parse_command(b"RCPT TO:<Fred@Bombs.AF.MIL> NOTIFY=NEVER", ctx) == Rcpt(
        Address("Fred", "Bombs.AF.MIL"), RcptParams(frozenset({"NEVER"}))
    )
