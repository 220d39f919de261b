"""Line framing for SMTP command and reply lines, with length limits.

Owns: cutting complete lines off a shared receive buffer, the line-length limit (RFC 5321
section 4.5.3.1.4: at least 512 octets for a command line, CRLF included) and skipping
the rest of an overlong line so that its tail is not read as a new command. Does not own
message content (see `data.py`).

A line ends at LF; a CR before it is removed. RFC 5321 section 2.3.8 asks for CRLF, but a
bare LF is accepted in command lines as Postfix and sendmail do; inside DATA only CRLF
counts (see `data.py`), which is where smuggling matters.
"""

from __future__ import annotations

import enum

__all__ = ["LineReader", "TooLong"]


class TooLong(enum.Enum):
    """Marker: a line longer than the limit was received and discarded."""

    LINE = enum.auto()


class LineReader:
    """Takes lines off the front of a buffer it shares with its owner."""

    __slots__ = ("_skipping", "buffer", "limit")

    def __init__(self, buffer: bytearray, limit: int) -> None:
        self.buffer = buffer
        self.limit = limit
        self._skipping = False

    def next_line(self) -> bytes | TooLong | None:
        """The next complete line without its line ending; None when more data is needed."""
        buf = self.buffer
        # `limit` counts the line ending too (RFC 5321 section 4.5.3.1.4).
        end = buf.find(b"\n", 0, self.limit)
        if end < 0:
            if len(buf) >= self.limit:
                # Overlong. If its end is already here, drop just that line (not the next
                # one); otherwise drop what we have and skip to the next LF (bounded memory).
                end = buf.find(b"\n", self.limit)
                if end >= 0:
                    del buf[: end + 1]
                    self._skipping = False
                    return TooLong.LINE
                del buf[:]
                self._skipping = True
            return None
        line = bytes(buf[:end])
        del buf[: end + 1]
        if self._skipping:
            self._skipping = False
            return TooLong.LINE
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def reset(self) -> None:
        """Forget a partly skipped line (used when the buffer is discarded)."""
        self._skipping = False
