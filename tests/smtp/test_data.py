"""Message content framing: CRLF.CRLF only, dot-unstuffing, BDAT counting, checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthorn.smtp.data import (
    ChunkReader,
    ContentChecker,
    ContentLimits,
    DataReader,
    dot_stuff,
    unstuff,
)
from posthorn.smtp.events import ChunkReceived, EndOfMessage, MessageData

LAX = ContentLimits(max_size=0, max_line=0)


def read_data(
    wire: bytes, limits: ContentLimits = LAX, step: int = 0
) -> tuple[bytes, object, bytes]:
    """Feed `wire` (what follows the DATA line) in pieces; return content, end, leftover."""
    buffer = bytearray()
    reader = DataReader(buffer, limits)
    pieces = [wire] if not step else [wire[i : i + step] for i in range(0, len(wire), step)]
    content = b""
    end: object = None
    for n, piece in enumerate([*pieces, b""]):
        buffer += piece
        while True:
            event = reader.next_event()
            if event is None:
                break
            if isinstance(event, MessageData):
                content += event.data
            else:
                end = event
                return content, end, bytes(buffer) + b"".join(pieces[n + 1 :])
    return content, end, bytes(buffer)


def test_simple_message() -> None:
    content, end, rest = read_data(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    assert content == b"Subject: x\r\n\r\nhello\r\n"
    assert end == EndOfMessage(None)
    assert rest == b"QUIT\r\n"


def test_empty_message_and_leading_dots() -> None:
    assert read_data(b".\r\n")[0] == b""
    assert read_data(b"..\r\n.\r\n")[0] == b".\r\n"
    assert read_data(b"..hidden\r\nx\r\n...\r\n.\r\n")[0] == b".hidden\r\nx\r\n..\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7])
def test_any_split_gives_the_same_content(step: int) -> None:
    wire = b"a\r\n..b\r\n.c\r\n\r\n..\r\nlast\r\n.\r\nNEXT"
    assert read_data(wire, step=step)[:2] == read_data(wire)[:2]
    assert read_data(wire, step=step)[0] == b"a\r\n.b\r\nc\r\n\r\n.\r\nlast\r\n"


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\n.\r"],
)
def test_only_crlf_dot_crlf_ends_data(smuggle: bytes) -> None:
    """SMTP smuggling: a fake terminator never ends the message; the message is refused."""
    wire = b"Subject: x\r\n\r\nbody" + smuggle + b"MAIL FROM:<evil@x.test>\r\n.\r\nRSET\r\n"
    _content, end, rest = read_data(wire, ContentLimits())
    assert rest == b"RSET\r\n"
    assert isinstance(end, EndOfMessage)
    assert end.problem is not None
    assert (end.problem.code, end.problem.esc) == (550, "5.6.0")


def test_bare_line_endings_normalised_when_configured() -> None:
    limits = ContentLimits(bare_eol="normalise")
    content, end, _ = read_data(b"a\nb\rc\r\n.\r\n", limits)
    assert end == EndOfMessage(None)
    assert content == b"a\r\nb\r\nc\r\n"
    # A CR split from its LF across blocks is not doubled.
    content, _, _ = read_data(b"one\r\ntwo\r\n.\r\n", limits, step=4)
    assert content == b"one\r\ntwo\r\n"


def test_size_limit_reads_to_the_end_then_refuses() -> None:
    _content, end, rest = read_data(
        b"x" * 50 + b"\r\n" + b"y" * 50 + b"\r\n.\r\nQUIT\r\n",
        ContentLimits(max_size=60, max_line=0),
        step=16,
    )
    assert isinstance(end, EndOfMessage)
    assert end.problem is not None
    assert end.problem.code == 552
    assert rest == b"QUIT\r\n"


def test_line_length_limit() -> None:
    limits = ContentLimits(max_line=20)
    ok = read_data(b"x" * 18 + b"\r\n.\r\n", limits)
    assert ok[1] == EndOfMessage(None)
    too_long = read_data(b"x" * 19 + b"\r\n.\r\n", limits)
    assert isinstance(too_long[1], EndOfMessage)
    assert too_long[1].problem is not None
    # An endless line is cut off without holding it all in memory.
    endless = read_data(b"y" * 5000 + b"\r\n.\r\nQUIT\r\n", limits, step=100)
    assert isinstance(endless[1], EndOfMessage)
    assert endless[1].problem is not None
    assert endless[2] == b"QUIT\r\n"


def test_nul_refused() -> None:
    _, end, _ = read_data(b"a\0b\r\n.\r\n", ContentLimits())
    assert isinstance(end, EndOfMessage)
    assert end.problem is not None


def test_dot_stuff() -> None:
    assert dot_stuff(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n.\r\n"
    assert dot_stuff(b"no final newline") == b"no final newline\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"


@given(st.lists(st.sampled_from([b"a", b".", b"\r\n", b"..", b"x y"]), max_size=40))
def test_unstuff_of_stuff_is_identity(parts: list[bytes]) -> None:
    message = b"".join(parts)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    wire = dot_stuff(message)
    assert read_data(wire)[0] == message
    assert read_data(wire, step=3)[0] == message
    assert unstuff(b"\r\n" + dot_stuff(message)[:-3])[2:] == message


@given(
    st.lists(st.sampled_from([b"a", b".", b"\r\n", b"..", b"x y", b"\r\n.", b"."]), max_size=60),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20),
)
def test_any_split_of_any_stuffed_message_reads_back(parts: list[bytes], cuts: list[int]) -> None:
    """The dot-line search runs only up to the last CRLF received: a stuffed dot or the
    terminator split across reads at any point is still found, and what follows stays."""
    message = b"".join(parts)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    wire = dot_stuff(message) + b"RSET\r\n"
    buffer = bytearray()
    reader = DataReader(buffer, LAX)
    content = b""
    end: object = None
    at = 0
    for size in [*cuts, len(wire)]:
        buffer += wire[at : at + size]
        at += size
        while end is None and (event := reader.next_event()) is not None:
            if isinstance(event, MessageData):
                content += event.data
            else:
                end = event
    assert (content, end, bytes(buffer)) == (message, EndOfMessage(None), b"RSET\r\n")


@pytest.mark.parametrize(
    "limits",
    [ContentLimits(max_size=0, max_line=1000), ContentLimits(max_size=5000, max_line=0)],
)
def test_an_endless_line_is_refused_with_bounded_memory(limits: ContentLimits) -> None:
    """A client that never sends CRLF: refused at the end, buffer never above a block."""
    buffer = bytearray()
    reader = DataReader(buffer, limits)
    for _ in range(100):
        buffer += b"x" * 4096
        assert reader.next_event() is None
        assert len(buffer) < 10_000
    buffer += b"\r\n.\r\nQUIT\r\n"
    event = reader.next_event()
    assert isinstance(event, EndOfMessage)
    assert event.problem is not None
    assert event.problem.code in (550, 552)
    assert bytes(buffer) == b"QUIT\r\n"


def read_chunks(
    chunks: list[tuple[bytes, bool]], limits: ContentLimits = LAX
) -> tuple[bytes, list[object]]:
    buffer = bytearray()
    checker = ContentChecker(limits)
    content = b""
    ends: list[object] = []
    for data, last in chunks:
        buffer += data
        reader = ChunkReader(buffer, len(data), last, checker)
        while True:
            event = reader.next_event()
            assert event is not None
            if isinstance(event, MessageData):
                content += event.data
                continue
            ends.append(event)
            break
    return content, ends


def test_bdat_chunks_are_raw() -> None:
    content, ends = read_chunks([(b"..no unstuffing\r\n", False), (b".\r\n", True)])
    assert content == b"..no unstuffing\r\n.\r\n"
    assert ends == [ChunkReceived(17, None), EndOfMessage(None)]


def test_bdat_crlf_split_across_chunks_is_not_bare() -> None:
    content, ends = read_chunks([(b"a\r", False), (b"\nb\r\n", True)], ContentLimits())
    assert ends[-1] == EndOfMessage(None)
    assert content == b"a\r\nb\r\n"


def test_bdat_size_limit() -> None:
    _, ends = read_chunks(
        [(b"x" * 10, False), (b"y" * 10, True)], ContentLimits(max_size=15, max_line=0)
    )
    final = ends[-1]
    assert isinstance(final, EndOfMessage)
    assert final.problem is not None
    assert final.problem.code == 552
