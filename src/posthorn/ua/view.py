"""What the reader's listing shows, and the header text decoding everything shares.

Owns: decoding RFC 2047 encoded words in header text (`decode_words`, on the fast path
that a 10,000-message listing needs), the summary of a header section (from, subject,
date), the listing's columns, sizes for people, and keeping control characters from a
message off the terminal (`printable`). Pure: bytes and strings in, values and strings
out; `email.header` decodes. Does not own rendering a whole message (`render.py`),
mailbox files (`mailboxes.py`) or the terminal (`terminal.py`).

Never raises for malformed mail: undecodable text becomes U+FFFD, unknown charsets are
read as UTF-8, a bad date shows as '?'.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from dataclasses import dataclass
from email.header import decode_header

__all__ = [
    "Summary",
    "decode_text",
    "decode_words",
    "format_size",
    "listing_line",
    "printable",
    "summarize",
]

# Control characters from a message must not reach the terminal: an ESC sequence in a
# subject or body could rewrite the screen or the title. Tabs stay.
_CONTROLS = {c: "?" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c != 0x09}


def decode_text(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know: UTF-8 is the best guess
        return data.decode("utf-8", "replace")


def _unescape(text: str) -> str:
    """Undo the surrogateescape that the parser uses for raw 8-bit header bytes: those are
    UTF-8 in practice (RFC 6532), or garbage that shows as U+FFFD."""
    if text.isascii() or not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """Header text with RFC 2047 encoded words decoded and folding removed.

    `=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=` -> `Keld Jørn Simonsen`. Whitespace between
    two adjacent encoded words is dropped (RFC 2047 section 6.2); other text is kept.
    """
    value = _unescape(value)
    if "=?" not in value:
        return " ".join(value.split()) if "\n" in value or "\r" in value else value
    chunks = decode_header(value)
    text = "".join(
        chunk if isinstance(chunk, str) else decode_text(chunk, charset)
        for chunk, charset in chunks
    )
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Summary:
    sender: str  # the display name, else the address
    subject: str
    date: datetime.datetime | None


def _sender(value: str) -> str:
    """The display name of a From value, else its address.

    The common forms (`Name <a@b>`, `"Name" <a@b>`, `<a@b>`, `a@b`) are cut directly;
    anything with comments, escapes or several addresses goes to `parseaddr`.
    """
    lt = value.find("<")
    if lt >= 0 and value.endswith(">") and "(" not in value and "\\" not in value:
        name = value[:lt].strip()
        if name.count('"') == 2 and name[0] == name[-1] == '"':
            name = name[1:-1]
        if '"' not in name and "," not in name:
            return decode_words(name) if name else value[lt + 1 : -1].strip()
    name, address = email.utils.parseaddr(value)
    return decode_words(name) if name else address or decode_words(value)


def _date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


# The fields a listing shows, each with its folded continuation lines (RFC 5322 section
# 2.2.3). Matching them in the header block is ten times faster than the email parser,
# which a listing of 10,000 messages needs; decoding stays with `email.header`.
_FIELD = re.compile(rb"^(from|subject|date)[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def summarize(head: bytes) -> Summary:
    """The summary of a header section (bytes up to the blank line)."""
    found: dict[bytes, str] = {}
    for match in _FIELD.finditer(head):
        name = match.group(1).lower()
        if name not in found:  # RFC 5322 section 3.6: each of these occurs at most once
            # Raw 8-bit header text is UTF-8 in practice (RFC 6532); else U+FFFD.
            found[name] = match.group(2).decode("utf-8", "replace").strip()
    sender = found.get(b"from", "")
    return Summary(
        sender=_sender(sender) if sender else "",
        subject=decode_words(found.get(b"subject", "")),
        date=_date(found.get(b"date")),
    )


def format_size(size: int) -> str:
    if size < 1024:
        return str(size)
    for unit in ("K", "M", "G"):
        size_f = size / 1024
        if size_f < 1024 or unit == "G":
            return f"{size_f:.1f}{unit}" if size_f < 10 else f"{size_f:.0f}{unit}"
        size //= 1024
    raise AssertionError("unreachable")


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters (tab excepted) shown as '?'."""
    return text.translate(_CONTROLS)


def _fit(text: str, width: int) -> str:
    text = printable(text.replace("\t", " "))
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


def listing_line(number: int, status: str, summary: Summary, size: int) -> str:
    """One line of the listing: number, status flags, date, from, size, subject."""
    date = summary.date.astimezone().strftime("%a %b %d %H:%M") if summary.date else "?"
    return (
        f"{status:<2} {number:>3} {date:<16}  {_fit(summary.sender, 22)} "
        f"{format_size(size):>6}  {_fit(summary.subject, 200).rstrip()}"
    )
