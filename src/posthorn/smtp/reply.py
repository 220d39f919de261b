"""SMTP replies: the `Reply` value and its wire form, both directions.

Owns: rendering a reply as bytes (multi-line form of RFC 5321 section 4.2.1, with the
RFC 2034 enhanced status code on every line) and parsing reply lines that a client
receives. Does not own which reply to give (policy) or when (the state machines).

Raises `ReplyError` (a `ValueError`) from `parse_reply_line` for a line that is not a
reply.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["Reply", "ReplyError", "parse_reply_line", "split_esc"]


class ReplyError(ValueError):
    """A line from the peer that is not an SMTP reply line."""


_ESC = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\Z")
_REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])([ -]?)(.*?)\r?\n?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply: a three-digit code, an optional enhanced status code, text lines.

    >>> Reply(250, "2.1.0", ("Ok",)).to_bytes()
    b'250 2.1.0 Ok\\r\\n'
    """

    code: int
    esc: str | None = None
    lines: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        _check_codes(self.code, self.esc)
        if not self.lines:
            raise ValueError("a reply has at least one line")

    @classmethod
    def of(cls, code: int, esc: str | None, *lines: str) -> Reply:
        return cls(code, esc, lines or ("",))

    @property
    def is_positive(self) -> bool:
        """2xx or 3xx: the command was accepted (RFC 5321 section 4.2.1)."""
        return self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    @property
    def text(self) -> str:
        """All lines joined by spaces, with the enhanced code in front when there is one."""
        body = " ".join(line for line in self.lines if line)
        return f"{self.esc} {body}" if self.esc else body

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()

    def to_bytes(self) -> bytes:
        """The reply on the wire; every line carries the code and the enhanced code."""
        return _render(self.code, self.esc, self.lines)


@functools.lru_cache(maxsize=256)
def _check_codes(code: int, esc: str | None) -> None:
    """Raise ValueError for a code out of range or an enhanced code that does not fit;
    checked once per pair (a server makes the same few replies again and again)."""
    if not 200 <= code <= 599:
        raise ValueError(f"reply code out of range: {code}")
    if esc is not None:
        match = _ESC.match(esc)
        # RFC 3463 section 2: the class digit must agree with the reply code's.
        if match is None or match.group(1) != str(code)[0]:
            raise ValueError(f"enhanced status code {esc!r} does not fit {code}")


@functools.lru_cache(maxsize=256)
def _render(code: int, esc: str | None, lines: tuple[str, ...]) -> bytes:
    # Most replies are the same few ("250 2.1.0 Ok"): format each once.
    prefix = f"{esc} " if esc else ""
    last = len(lines) - 1
    out = []
    for i, line in enumerate(lines):
        sep = " " if i == last else "-"
        out.append(f"{code}{sep}{prefix}{line}".rstrip(" ") + "\r\n")
    return "".join(out).encode("utf-8")


def parse_reply_line(line: bytes) -> tuple[int, bool, str]:
    """Split one received reply line into (code, is_last, text).

    The text keeps any enhanced status code; `Reply` assembly is the client core's job.
    A bare code (`250`) is a last line with empty text (RFC 5321 section 4.2.1).
    """
    match = _REPLY_LINE.match(line)
    if match is None:
        raise ReplyError(f"not a reply line: {line[:80]!r}")
    code, sep, text = match.groups()
    if sep == b"" and text:
        raise ReplyError(f"no separator after reply code: {line[:80]!r}")
    return int(code), sep != b"-", text.decode("utf-8", "replace")


def split_esc(code: int, text: str) -> tuple[str | None, str]:
    """Take an RFC 3463 enhanced status code off the front of reply text, if present."""
    head, _, rest = text.partition(" ")
    match = _ESC.match(head)
    if match is not None and match.group(1) == str(code)[0]:
        return head, rest
    return None, text
