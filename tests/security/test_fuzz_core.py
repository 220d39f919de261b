"""Hypothesis fuzzing of the server core and the command grammar: random bytes never
raise anything but the documented errors, and the core's invariants hold."""

from __future__ import annotations

import base64
import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthorn.address import Address, AddressError
from posthorn.passwords import PasswordFileError, parse
from posthorn.receive.auth import Abort, Challenge, Credentials, SaslExchange
from posthorn.routing.relay import destination
from posthorn.smtp import events as ev
from posthorn.smtp.commands import ParseContext, parse_command
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.server import State
from support.coredriver import CAPS, drive

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VERBS = [
    b"HELO",
    b"EHLO",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"BDAT",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"HELP",
    b"VRFY",
    b"EXPN",
    b"STARTTLS",
    b"AUTH",
    b"ETRN",
    b"TURN",
    b"SEND FROM:",
]
PIECES = [
    b"<",
    b">",
    b"@",
    b'"',
    b"\\",
    b"%",
    b"!",
    b":",
    b",",
    b"[",
    b"]",
    b".",
    b" ",
    b"=",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"a",
    b"example.test",
    b"SIZE=",
    b"BODY=8BITMIME",
    b"SMTPUTF8",
    b"NOTIFY=",
    b"ORCPT=rfc822;",
    b"LAST",
    b"IPv6:",
    b"0",
]

# Text a SASL PLAIN message can carry: UTF-8 without NUL (RFC 4616 section 2).
_NO_NUL = st.characters(blacklist_categories=["Cs"], blacklist_characters="\0")

command_lines = st.builds(
    lambda verb, parts: verb + b"".join(parts),
    st.sampled_from(VERBS),
    st.lists(st.sampled_from(PIECES) | st.binary(max_size=8), max_size=12),
)
contexts = st.builds(
    ParseContext,
    st.sampled_from([CAPS, Capabilities()]),
    st.booleans(),
    st.booleans(),
)


@FUZZ
@given(st.binary(max_size=600) | command_lines, contexts)
def test_parse_command_never_raises(line: bytes, ctx: ParseContext) -> None:
    line = line.replace(b"\r", b"").replace(b"\n", b"")
    result = parse_command(line, ctx)
    assert isinstance(result, ev.Invalid) or type(result) in ev.Command.__args__  # type: ignore[attr-defined]


@FUZZ
@given(st.text(max_size=80))
def test_address_parse_raises_only_address_error(text: str) -> None:
    try:
        address = Address.parse(text, utf8=True)
    except AddressError:
        return
    assert Address.parse(str(address), utf8=True) == address  # quoting round-trips


@FUZZ
@given(st.lists(command_lines | st.binary(max_size=64), max_size=30), st.lists(st.booleans()))
def test_server_core_survives_any_input(lines: list[bytes], refusals: list[bool]) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    conn, _events = drive([stream], refusals)
    assert isinstance(conn.state, State)


SESSION = (
    b"EHLO c.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
    b"Subject: x\r\n\r\n..dot\r\nline\r\n.\r\nMAIL FROM:<a@example.test>\r\n"
    b"RCPT TO:<c@example.test>\r\nBDAT 5 LAST\r\nhelloRSET\r\nQUIT\r\n"
)


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=len(SESSION)), max_size=20))
def test_events_do_not_depend_on_how_bytes_are_split(cuts: list[int]) -> None:
    """TCP may cut the stream anywhere: the commands and the content must not change."""
    points = sorted({0, len(SESSION), *cuts})
    chunks = [SESSION[a:b] for a, b in itertools.pairwise(points)]
    _, whole = drive([SESSION])
    _, split = drive(chunks)

    def summary(events: list[ev.Event]) -> list[object]:
        out: list[object] = []
        for e in events:
            if isinstance(e, ev.MessageData):
                if out and isinstance(out[-1], bytes):
                    out[-1] += e.data
                else:
                    out.append(e.data)
            else:
                out.append(e)
        return out

    assert summary(split) == summary(whole)
    assert summary(whole)[-1] == ev.Quit()


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_plaintext_after_starttls_never_becomes_a_command(injected: bytes, split: bool) -> None:
    head = b"EHLO c.test\r\nSTARTTLS\r\n"
    chunks = [head, injected] if split else [head + injected]
    _conn, events = drive(chunks)
    after = events[events.index(ev.StartTls()) + 1 :]
    # Only what arrived after the 220 was sent can be read, and the split case delivers
    # the injection after it: in the one-chunk case nothing at all survives.
    if not split:
        assert after == []


@FUZZ
@given(
    st.sampled_from(["PLAIN", "LOGIN"]),
    st.lists(st.text(max_size=40) | st.sampled_from(["*", "=", "AGFsaWNlAHB3"]), max_size=4),
)
def test_sasl_never_raises(mechanism: str, lines: list[str]) -> None:
    exchange = SaslExchange(mechanism)
    step = exchange.start(lines[0] if lines else None)
    for line in lines[1:]:
        if not isinstance(step, Challenge):
            break
        step = exchange.respond(line)
    assert isinstance(step, Challenge | Credentials | Abort)


@FUZZ
@given(st.text(_NO_NUL, min_size=1, max_size=20), st.text(_NO_NUL, max_size=20))
def test_sasl_plain_round_trip(user: str, password: str) -> None:
    encoded = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    assert SaslExchange("PLAIN").start(encoded) == Credentials(user, password, "")


@FUZZ
@given(st.text(max_size=200))
def test_password_file_parse_raises_only_its_error(text: str) -> None:
    with contextlib.suppress(PasswordFileError):
        parse(text)


@FUZZ
@given(
    st.lists(
        st.sampled_from(["a", "%", "!", "@", ".", "b.test", "mx.test", "[1.2.3.4]", "x"]),
        max_size=10,
    ),
    st.sampled_from(["mx.test", "other.test", "[127.0.0.1]"]),
)
def test_relay_destination_is_a_fixed_point(parts: list[str], domain: str) -> None:
    local = "".join(parts) or "a"
    address = Address(local, domain)

    def is_local(a: Address) -> bool:
        return not a.domain or a.domain_key == "mx.test"

    found = destination(address, is_local)
    # Resolving is idempotent: what it returns hides no further destination.
    assert destination(found, is_local) == found
    if found != address:
        assert is_local(address)  # only local parts of local domains are looked into
