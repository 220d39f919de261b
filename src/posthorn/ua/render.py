"""One message rendered as text for the terminal (`posthorn read N`).

Owns: the main headers decoded, text parts decoded from quoted-printable or base64 and
their charset into `str` (the email package decodes), multipart/alternative resolved to
its plain-text alternative (RFC 2046 section 5.1.4), nested multiparts and forwarded
messages (message/rfc822) walked, HTML reduced to its text when nothing else is there,
other parts listed as attachments with their decoded bytes, and the lines to print.
Pure: an `email` message in, values and strings out. Does not own listing
(`view.py`), mailbox files (`mailboxes.py`) or the terminal (`terminal.py`).

Never raises for malformed mail: undecodable text becomes U+FFFD, unknown charsets are
read as UTF-8, a part that cannot be read as text is listed as an attachment.
"""

from __future__ import annotations

import html.parser
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from posthorn.ua.view import decode_text, decode_words, format_size, printable

__all__ = ["SHOWN_HEADERS", "Part", "Rendered", "render", "render_lines"]

SHOWN_HEADERS = ("Date", "From", "To", "Cc", "Reply-To", "Subject")


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
    text = decode_text(data, charset).replace("\r\n", "\n")
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
