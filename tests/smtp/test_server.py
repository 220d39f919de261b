"""The server state machine in memory: sequencing, pipelining, DATA/BDAT, STARTTLS, AUTH."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthorn.smtp import events as ev
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ALLOWED, ServerConnection, State
from support.coredriver import CAPS, Driver


def codes(driver: Driver, data: bytes) -> list[int]:
    return [c for _, c in driver.feed(data)]


def test_allowed_table_reads_as_the_protocol() -> None:
    assert ev.Mail not in ALLOWED[State.READY]
    assert ev.Rcpt in ALLOWED[State.MAIL]
    assert ev.Data not in ALLOWED[State.MAIL]
    assert ev.Data in ALLOWED[State.RCPT]
    assert ALLOWED[State.REFUSED] == {ev.Quit}


def test_out_of_sequence_commands_get_503() -> None:
    d = Driver()
    assert codes(d, b"MAIL FROM:<a@b.test>\r\n") == [503]
    assert codes(d, b"EHLO c.test\r\nRCPT TO:<x@y.test>\r\nDATA\r\n") == [250, 503, 503]
    assert codes(d, b"MAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n") == [250, 503, 503]
    assert codes(d, b"STARTTLS\r\n") == [503]  # not inside a transaction


def test_whole_transaction_pipelined_in_one_packet() -> None:
    d = Driver()
    wire = (
        b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\n"
        b"DATA\r\nSubject: s\r\n\r\n..dot\r\n.\r\nNOOP\r\nQUIT\r\n"
    )
    assert codes(d, wire) == [250, 250, 250, 250, 354, 250, 250, 221]
    assert d.content == b"Subject: s\r\n\r\n.dot\r\n"
    assert d.conn.state is State.CLOSED


def test_next_event_before_reply_is_a_driver_bug() -> None:
    conn = ServerConnection(CAPS)
    conn.send(Reply(220, None, ("hi",)))
    conn.receive_data(b"NOOP\r\nNOOP\r\n")
    assert isinstance(conn.next_event(), ev.Noop)
    with pytest.raises(RuntimeError):
        conn.next_event()


def test_rset_and_ehlo_reset_the_transaction() -> None:
    d = Driver()
    assert codes(d, b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRSET\r\nRCPT TO:<x@y.test>\r\n") == [
        250, 250, 250, 503,
    ]  # fmt: skip
    assert codes(d, b"MAIL FROM:<a@b.test>\r\nEHLO c\r\nRCPT TO:<x@y.test>\r\n") == [250, 250, 503]


def test_rejected_rcpt_leaves_state() -> None:
    d = Driver()
    d.feed(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\n")
    d.conn.receive_data(b"RCPT TO:<x@y.test>\r\n")
    assert isinstance(d.conn.next_event(), ev.Rcpt)
    d.conn.send(Reply(550, "5.1.1", ("no such user",)))
    assert d.conn.state is State.MAIL
    assert codes(d, b"DATA\r\n") == [503]


def test_data_problem_returns_to_session() -> None:
    d = Driver(limits=ContentLimits(max_size=10, max_line=0))
    answered = d.feed(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n")
    assert [c for _, c in answered] == [250, 250, 250, 354]
    assert codes(d, b"0123456789ABCDEF\r\n.\r\nMAIL FROM:<a@b.test>\r\n") == [552, 250]


def test_bdat_transaction() -> None:
    d = Driver()
    wire = b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n"
    wire += b"BDAT 5\r\n12345BDAT 3 LAST\r\nabc"
    assert d.feed(wire) == [
        ("Ehlo", 250), ("Mail", 250), ("Rcpt", 250), ("ChunkReceived", 250), ("EndOfMessage", 250),
    ]  # fmt: skip
    assert d.content == b"12345abc"
    assert d.conn.state is State.SESSION


def test_bdat_out_of_sequence_is_read_and_refused() -> None:
    d = Driver()
    # The chunk's octets must not be read as commands (RFC 3030 section 2).
    assert d.feed(b"EHLO c\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n") == [
        ("Ehlo", 250), ("EndOfMessage", 503), ("Noop", 250),
    ]  # fmt: skip
    assert d.content == b""


def test_data_not_allowed_inside_bdat() -> None:
    d = Driver()
    d.feed(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nBDAT 2\r\nab")
    assert codes(d, b"DATA\r\nBDAT 1 LAST\r\nc") == [503, 250]


def test_starttls_discards_pipelined_plaintext() -> None:
    """CVE-2011-0411: commands sent with STARTTLS must not run after the handshake."""
    d = Driver()
    assert codes(d, b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.test>\r\n") == [250, 220]
    assert d.conn.tls
    assert d.conn.state is State.READY
    assert d.conn.buffered == 0
    assert codes(d, b"MAIL FROM:<a@b.test>\r\n") == [503]  # EHLO again first
    assert codes(d, b"EHLO c\r\nSTARTTLS\r\n") == [250, 503]


def test_auth_exchange() -> None:
    d = Driver()
    assert codes(d, b"EHLO c\r\nAUTH PLAIN\r\n") == [250, 334]
    assert d.conn.state is State.AUTH
    assert codes(d, b"AGFsaWNlAHNlY3JldA==\r\n") == [235]
    assert d.conn.authenticated
    assert codes(d, b"AUTH PLAIN\r\n") == [503]


def test_greeting_554_allows_only_quit() -> None:
    conn = ServerConnection(CAPS)
    conn.send(Reply(554, "5.7.1", ("go away",)))
    conn.receive_data(b"EHLO c\r\n")
    event = conn.next_event()
    assert isinstance(event, ev.Invalid)
    assert event.reply.code == 503


def test_421_closes() -> None:
    d = Driver()
    d.conn.send(Reply(421, "4.4.2", ("timeout",)))
    assert d.conn.state is State.CLOSED
    assert isinstance(d.conn.next_event(), ev.ConnectionClosed)


def test_eof_in_data_is_connection_closed() -> None:
    d = Driver()
    d.feed(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\npartial")
    d.conn.receive_data(b"")
    assert isinstance(d.conn.next_event(), ev.ConnectionClosed)


def test_overlong_command_is_refused_and_its_tail_ignored() -> None:
    d = Driver()
    line = b"NOOP " + b"x" * 600 + b" QUIT\r\n"
    assert codes(d, line + b"NOOP\r\n") == [500, 250]
    assert d.conn.state is State.READY


def test_unadvertised_extension_command_is_502() -> None:
    d = Driver(Capabilities(size=1000))
    assert codes(d, b"EHLO c\r\nSTARTTLS\r\nAUTH PLAIN\r\nBDAT 1\r\nx") == [250, 502, 502, 502]


commands = st.sampled_from(
    [
        b"EHLO c\r\n", b"HELO c\r\n", b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<x@y.test>\r\n",
        b"DATA\r\n", b"hello\r\n.\r\n", b"BDAT 3\r\nabc", b"BDAT 2 LAST\r\nxy", b"RSET\r\n",
        b"NOOP\r\n", b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"*\r\n", b"\r\n.\r\n", b"\xff\0\r\n",
        b"VRFY x\r\n", b"QUIT\r\n",
    ]
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(st.one_of(commands, st.binary(max_size=64)), max_size=30), st.integers(1, 17))
def test_random_input_never_breaks_the_core(parts: list[bytes], step: int) -> None:
    """Whatever the peer sends, in whatever pieces: events come out, never exceptions."""
    d = Driver()
    wire = b"".join(parts)
    for i in range(0, len(wire), step):
        if d.conn.state is State.CLOSED:
            break
        d.feed(wire[i : i + step])
    d.conn.receive_data(b"")
    if d.conn.state is not State.CLOSED:
        d.feed(b"")


@pytest.mark.parametrize("step", [1000, 4096, 65536, 200_000])
def test_overlong_line_ending_far_past_the_limit(step: int) -> None:
    """The LF of an overlong line may arrive anywhere in a later block."""
    d = Driver()
    wire = b"NOOP " + b"y" * 100_000 + b"\r\nNOOP\r\n"
    got: list[int] = []
    for i in range(0, len(wire), step):
        got += codes(d, wire[i : i + step])
    assert got == [500, 250]
