"""Message content framing: DATA (dot-stuffed, CRLF.CRLF) and BDAT (counted chunks).

Owns: finding the end of DATA (RFC 5321 section 4.1.1.4: only CRLF "." CRLF ends it),
dot-unstuffing (section 4.5.2) and dot-stuffing for the client side, counting BDAT
chunks (RFC 3030), and the content checks done on the way: message size (RFC 1870),
text line length (section 4.5.3.1.6), bare CR or LF (section 2.3.8; the SMTP smuggling
defence) and NUL octets. Does not own what happens to an accepted message.

Work is done on whole blocks with `bytes.find`, `count` and `replace`, never a Python
loop per line. A reader that meets a problem keeps reading to the end of the message,
discarding content, and reports the problem in the final event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from posthorn.smtp.events import ChunkReceived, EndOfMessage, MessageData
from posthorn.smtp.reply import Reply

__all__ = ["ChunkReader", "ContentChecker", "ContentLimits", "DataReader", "dot_stuff", "unstuff"]

# A line that begins with a dot: a stuffed dot (section 4.5.2) or, followed by CRLF,
# the end of the data (section 4.1.1.4). Such lines are rare, so one search for them
# finds both; `re` finds this literal twice as fast as `bytes.find` does.
_LINE_DOT = re.compile(rb"\r\n\.")
TOO_BIG = Reply(552, "5.3.4", ("Message size exceeds fixed maximum message size",))
BARE_EOL = Reply(
    550, "5.6.0", ("Message contains bare CR or LF line endings (RFC 5321 section 2.3.8)",)
)
HAS_NUL = Reply(550, "5.6.0", ("Message contains NUL characters",))


def _line_too_long(limit: int) -> Reply:
    return Reply(550, "5.6.0", (f"Message contains a line longer than {limit} octets",))


@dataclass(frozen=True, slots=True)
class ContentLimits:
    """Checks applied to message content. 0 disables a size or line limit."""

    max_size: int = 0
    max_line: int = 1000  # octets including CRLF (RFC 5321 section 4.5.3.1.6)
    bare_eol: str = "reject"  # "reject" | "normalise"
    reject_nul: bool = True


def unstuff(region: bytes) -> bytes:
    """Remove the dot that the sender put before every line that begins with a dot."""
    return region.replace(b"\r\n.", b"\r\n")


def dot_stuff(message: bytes) -> bytes:
    """The DATA form of a message: dots doubled at line starts, CRLF.CRLF appended."""
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _scan(data: bytes, max_line: int) -> tuple[bool, int]:
    """(has a CR or LF that is not part of a CRLF, octets of the longest line with its
    CRLF). One split on CRLF answers both; a block's last line is taken to end there.
    The line length is computed only when the block could hold a line that long."""
    lines = data.split(b"\r\n")
    rest = b"".join(lines)
    bare = b"\r" in rest or b"\n" in rest
    longest = max(map(len, lines)) + 2 if max_line and len(data) >= max_line - 2 else 0
    return bare, longest


def _normalise(data: bytes) -> bytes:
    """Every bare CR or LF becomes CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


class ContentChecker:
    """Applies ContentLimits to the successive blocks of one message."""

    __slots__ = ("_carry", "limits", "problem", "size")

    def __init__(self, limits: ContentLimits) -> None:
        self.limits = limits
        self.size = 0
        self.problem: Reply | None = None
        self._carry = b""

    def check(self, block: bytes) -> bytes:
        """The block to keep (normalised if so configured); sets `problem` instead."""
        if self.problem is not None:
            return b""
        limits = self.limits
        self.size += len(block)
        if limits.max_size and self.size > limits.max_size:
            self.problem = TOO_BIG
            return b""
        if limits.reject_nul and b"\0" in block:
            self.problem = HAS_NUL
            return b""
        normalise = limits.bare_eol == "normalise"
        # A CR at the end of a block may be the first half of a CRLF split across blocks:
        # hold it back and judge it with the next block.
        block = self._carry + block
        self._carry = b"\r" if block.endswith(b"\r") else b""
        if self._carry:
            block = block[:-1]
        bare, longest = _scan(block, limits.max_line)
        if bare:
            if not normalise:
                self.problem = BARE_EOL
                return b""
            block = _normalise(block)
            longest = _scan(block, limits.max_line)[1]
        if limits.max_line and longest > limits.max_line:
            self.problem = _line_too_long(limits.max_line)
            return b""
        return block

    def finish(self) -> bytes:
        """Content still held back at the end of the message (a final bare CR)."""
        tail, self._carry = self._carry, b""
        if not tail or self.problem is not None:
            return b""
        if self.limits.bare_eol != "normalise":
            self.problem = BARE_EOL
            return b""
        return _normalise(tail)


class DataReader:
    """Reads one DATA message from the front of a shared buffer.

    The buffer starts with the CRLF of the DATA command line itself (put there by the
    constructor), so that a terminator or a stuffed dot on the very first line is found
    by the same search as on any other line. Every unread remainder starts with CRLF.
    """

    __slots__ = ("_checker", "_done", "_virtual", "buffer")

    def __init__(self, buffer: bytearray, limits: ContentLimits) -> None:
        buffer[0:0] = b"\r\n"
        self.buffer = buffer
        self._virtual = True
        self._done = False
        self._checker = ContentChecker(limits)

    def next_event(self) -> MessageData | EndOfMessage | None:
        """The next block of content, the end of the message, or None (need data)."""
        if self._done:
            return EndOfMessage(self._checker.problem)
        buf = self.buffer
        # Everything before the last CRLF can be judged now; a dot line starting there
        # may still be the terminator.
        cut = buf.rfind(b"\r\n")
        if cut <= 0:
            self._unfinished_line(buf)
            return None
        end, stuffed = _dot_lines(buf, cut)
        if end >= 0:
            data = b""
            if self._checker.problem is None:
                data = self._emit(bytes(buf[:end]), stuffed, final=True)
                data += self._checker.finish()
            del buf[: end + 5]
            self._done = True
            if data and self._checker.problem is None:
                return MessageData(data)
            return EndOfMessage(self._checker.problem)
        if self._checker.problem is not None:
            del buf[:cut]  # discarding: keep only the line that may hold the end
            return None
        data = self._emit(bytes(buf[:cut]), stuffed, final=False)
        del buf[:cut]
        return MessageData(data) if data else self.next_event()

    def _unfinished_line(self, buf: bytearray) -> None:
        """No complete line yet: it must not grow without bound."""
        checker = self._checker
        if checker.problem is not None:
            # Discarding: keep only what may be the start of the terminator.
            del buf[: max(0, len(buf) - 4)]
            return
        limits = checker.limits
        if limits.max_line and len(buf) - 2 > limits.max_line:
            checker.problem = _line_too_long(limits.max_line)
        elif limits.max_size and checker.size + len(buf) - 2 > limits.max_size:
            checker.problem = TOO_BIG

    def _emit(self, region: bytes, stuffed: bool, *, final: bool) -> bytes:
        was_virtual, self._virtual = self._virtual, False
        data = unstuff(region) if stuffed else region
        if was_virtual:
            data = data[2:]
        if final and not (was_virtual and not region):
            data += b"\r\n"
        return self._checker.check(data)


def _dot_lines(buf: bytearray, cut: int) -> tuple[int, bool]:
    """(where CRLF.CRLF starts before `cut`, or -1; whether a stuffed dot line comes
    before it). A dot line that starts before `cut` is whole: `cut` is a later CRLF."""
    stuffed = False
    start = 0
    while (found := _LINE_DOT.search(buf, start, cut)) is not None:
        at = found.start()
        if buf[at + 3 : at + 5] == b"\r\n":
            return at, stuffed
        stuffed = True
        start = at + 3
    return -1, stuffed


class ChunkReader:
    """Reads one BDAT chunk of `size` octets from the front of a shared buffer.

    The checker is shared by all chunks of one message, so limits apply to the whole.
    """

    __slots__ = ("_checker", "_remaining", "buffer", "last", "size")

    def __init__(self, buffer: bytearray, size: int, last: bool, checker: ContentChecker) -> None:
        self.buffer = buffer
        self.size = size
        self.last = last
        self._remaining = size
        self._checker = checker

    def next_event(self) -> MessageData | EndOfMessage | ChunkReceived | None:
        while self._remaining:
            take = min(len(self.buffer), self._remaining)
            if not take:
                return None
            block = bytes(self.buffer[:take])
            del self.buffer[:take]
            self._remaining -= take
            data = self._checker.check(block)
            if data:
                return MessageData(data)
        if not self.last:
            return ChunkReceived(self.size, self._checker.problem)
        if self._remaining == 0 and self.size >= 0:
            self.size = -1  # the tail, if any, is returned once
            tail = self._checker.finish()
            if tail:
                return MessageData(tail)
        return EndOfMessage(self._checker.problem)
