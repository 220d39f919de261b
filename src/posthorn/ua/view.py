"""What the reader shows: message summaries for a listing and one message rendered as text.

Owns: decoding RFC 2047 encoded words in header text (`decode_words`, on the fast path
that a 10,000-message listing needs), the summary of a header section (from, subject,
date), the listing's columns, and rendering a whole message: its main headers decoded,
text parts decoded from quoted-printable or base64 and their charset into `str`,
multipart/alternative resolved to its plain-text alternative, nested multiparts and
forwarded messages (message/rfc822) walked, other parts listed as attachments. Pure:
bytes and `email` objects in, values and strings out; the stdlib `email` package decodes.
Does not own mailbox files (`mailboxes.py`) or the terminal (`shell.py`).

Never raises for malformed mail: undecodable text becomes U+FFFD, unknown charsets are
read as UTF-8, a bad date shows as '?'.
"""

from __future__ import annotations

import datetime
import email.utils
import html.parser
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import EmailMessage, Message

__all__ = [
    "Part",
    "Rendered",
    "Summary",
    "decode_words",
    "format_size",
    "listing_line",
    "printable",
    "render",
    "render_lines",
    "summarize",
]

# Control characters from a message must not reach the terminal: an ESC sequence in a
# subject or body could rewrite the screen or the title. Tabs stay.
_CONTROLS = {c: "?" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c != 0x09}
SHOWN_HEADERS = ("Date", "From", "To", "Cc", "Reply-To", "Subject")


def _decode(data: bytes, charset: str | None) -> str:
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
        chunk if isinstance(chunk, str) else _decode(chunk, charset) for chunk, charset in chunks
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


# -- one message -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """A part the reader does not show inline: listed, and saved on request."""

    number: int
    filename: str
    content_type: str
    size: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    headers: tuple[tuple[str, str], ...]
    blocks: tuple[str, ...]  # text shown in order (parts, notes, forwarded headers)
    attachments: tuple[Part, ...]


_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")


class _HtmlText(html.parser.HTMLParser):
    """Text of an HTML part for a terminal: tags dropped, blocks on their own lines."""

    _BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            # HTML collapses runs of ASCII white space (not NBSP) into one space.
            self.out.append(_HTML_SPACE.sub(" ", data))

    def text(self) -> str:
        lines = "".join(self.out).split("\n")
        kept = (line.strip(" ") for line in lines)
        return "\n".join(line for line in kept if line) + "\n"


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    if charset in (None, "us-ascii") and not data.isascii():
        charset = "utf-8"  # 8-bit text without a declared charset: UTF-8 in practice
    text = _decode(data, charset).replace("\r\n", "\n")
    if part.get_content_type() == "text/html":
        parser = _HtmlText()
        parser.feed(text)
        parser.close()
        return parser.text()
    return text


def _header_text(message: Message, name: str) -> str | None:
    values = message.get_all(name)
    if not values:
        return None
    # Under policy.default str() is already decoded; decode_words unfolds what is left.
    return ", ".join(decode_words(str(v)) for v in values)


def _headers(message: Message) -> tuple[tuple[str, str], ...]:
    found = ((name, _header_text(message, name)) for name in SHOWN_HEADERS)
    return tuple((name, value) for name, value in found if value is not None)


def _is_attachment(part: Message) -> bool:
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_content_maintype() != "text"


def _filename(part: Message, number: int) -> str:
    name = part.get_filename()
    if name:
        return decode_words(name)
    extension = mimetypes.guess_extension(part.get_content_type()) or ".bin"
    return f"part-{number}{extension}"


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.parts: list[Part] = []

    def walk(self, part: Message) -> None:
        ctype = part.get_content_type()
        if ctype == "multipart/alternative":
            self._alternative(part)
        elif part.is_multipart() and part.get_content_maintype() == "multipart":
            for sub in _subparts(part):
                self.walk(sub)
        elif ctype == "message/rfc822" and part.get_content_disposition() != "attachment":
            self._forwarded(part)
        elif _is_attachment(part):
            self._attach(part)
        else:
            self.blocks.append(_text_of(part))

    def _alternative(self, part: Message) -> None:
        options = _subparts(part)
        # RFC 2046 section 5.1.4: a text reader shows the plain alternative; else the
        # first it can show; the others are not shown, and said so.
        ranked = sorted(options, key=lambda p: 0 if p.get_content_type() == "text/plain" else 1)
        if not ranked:
            return
        chosen = ranked[0]
        self.walk(chosen)
        others = [p.get_content_type() for p in options if p is not chosen]
        if others:
            self.blocks.append(f"[-- alternative {', '.join(others)} not shown --]\n")

    def _forwarded(self, part: Message) -> None:
        inner = part.get_payload()
        message = inner[0] if isinstance(inner, list) and inner else None
        if not isinstance(message, Message):
            self._attach(part)
            return
        lines = [f"{name}: {value}" for name, value in _headers(message)]
        self.blocks.append("[-- forwarded message --]\n" + "\n".join(lines) + "\n")
        self.walk(message)
        self.blocks.append("[-- end of forwarded message --]\n")

    def _attach(self, part: Message) -> None:
        number = len(self.parts) + 1
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):  # a message/rfc822 attachment: its bytes
            payload = part.as_bytes()[len(_head_bytes(part)) :]
        self.parts.append(
            Part(number, _filename(part, number), part.get_content_type(), len(payload), payload)
        )


def _head_bytes(part: Message) -> bytes:
    data = part.as_bytes()
    end = data.find(b"\n\n")
    return data if end < 0 else data[: end + 2]


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def render(message: EmailMessage | Message) -> Rendered:
    """The message (parsed with policy.default) as the reader shows it."""
    walker = _Walker()
    walker.walk(message)
    return Rendered(_headers(message), tuple(walker.blocks), tuple(walker.parts))


def render_lines(rendered: Rendered, saved: Iterable[str] = ()) -> list[str]:
    """The lines to print for a rendered message; `saved` notes where parts were saved."""
    lines = [f"{name}: {value}" for name, value in rendered.headers]
    lines.append("")
    for block in rendered.blocks:
        lines.extend(block.rstrip("\n").split("\n"))
        lines.append("")
    for part in rendered.attachments:
        lines.append(
            f"[-- attachment {part.number}: {part.filename} "
            f"({part.content_type}, {format_size(part.size)}) --]"
        )
    lines.extend(f"saved {path}" for path in saved)
    while lines and not lines[-1]:
        lines.pop()
    return [printable(line) for line in lines]
