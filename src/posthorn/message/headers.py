"""Trace and delivery headers, added as bytes without re-serialising the message.

Owns: finding the header block of raw content, counting Received headers (the hop
count of RFC 5321 section 6.3), checking for a header by name, and writing the headers
an MTA adds: Received (section 4.4), Message-ID and Date when missing, Return-Path and
Delivered-To at final delivery. Does not own MIME or any parsing of header values.
"""

from __future__ import annotations

import email.utils
import functools
import re
import time

from posthorn.address import Address

__all__ = [
    "count_received",
    "date_header",
    "delivered_to",
    "delivered_to_values",
    "has_header",
    "header_block",
    "message_id",
    "received",
    "return_path",
    "starts_with_header",
]

_DELIVERED_TO = re.compile(
    rb"^delivered-to[ \t]*:((?:[^\r\n]*)(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE
)
_RECEIVED = re.compile(rb"^received[ \t]*:", re.IGNORECASE | re.MULTILINE)
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def header_block(content: bytes) -> bytes:
    """The header section of CRLF content, up to and including the CRLF that ends its
    last field (the whole content if it has no body)."""
    if content.startswith(b"\r\n"):
        return b""
    end = content.find(b"\r\n\r\n")
    return content if end < 0 else content[: end + 2]


def starts_with_header(content: bytes) -> bool:
    """True when the first line is a header field (RFC 5322 section 2.2)."""
    return _FIELD_NAME.match(content) is not None


def count_received(headers: bytes) -> int:
    return len(_RECEIVED.findall(headers))


@functools.lru_cache(maxsize=64)
def _field_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"^" + re.escape(name.encode("ascii")) + rb"[ \t]*:", re.I | re.M)


def has_header(headers: bytes, name: str) -> bool:
    return _field_pattern(name).search(headers) is not None


@functools.lru_cache(maxsize=4)
def _date_of_second(second: int) -> str:
    return email.utils.formatdate(second, localtime=True)


def _date(now: float) -> str:
    """RFC 5322 date-time; one formatting per second, however many messages share it."""
    return _date_of_second(int(now))


def received(
    *,
    helo: str,
    client_name: str,
    client_address: str,
    hostname: str,
    protocol: str,
    qid: str,
    recipient: Address | None,
    now: float,
    tls: str = "",
    userid: int | None = None,
) -> bytes:
    """A Received field (RFC 5321 section 4.4), folded over several lines.

    `for` names the recipient only when there is exactly one, so that a message to
    many does not reveal its Bcc recipients to each other. Local submission has no
    client address; it names the submitting user (`from userid N`, as Postfix writes)
    and, with no network protocol, may leave out `with` (`protocol` empty).
    """
    parts = []
    if client_address:
        name = client_name or "unknown"
        parts.append(f"from {helo or name} ({name} [{client_address}])")
    tls_note = f"\r\n\t({tls})" if tls else ""
    software = "Posthorn" if userid is None else f"Posthorn, from userid {userid}"
    with_protocol = f" with {protocol}" if protocol else ""
    parts.append(f"by {hostname} ({software}){with_protocol} id {qid}{tls_note}")
    if recipient is not None:
        parts.append(f"for <{recipient}>")
    text = "Received: " + "\r\n\t".join(parts) + f"; {_date(now)}\r\n"
    return text.encode("utf-8")


def message_id(qid: str, hostname: str, now: float | None = None) -> bytes:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"Message-ID: <{stamp}.{qid}@{hostname}>\r\n".encode()


def date_header(now: float) -> bytes:
    return f"Date: {_date(now)}\r\n".encode()


def return_path(sender: Address | None) -> bytes:
    """Return-Path at final delivery (RFC 5321 section 4.4): the envelope sender."""
    return f"Return-Path: <{'' if sender is None else sender}>\r\n".encode()


def delivered_to(address: Address) -> bytes:
    return f"Delivered-To: {address}\r\n".encode()


def delivered_to_values(headers: bytes) -> list[str]:
    """The addresses of the Delivered-To fields in a header block (unfolded, without
    angle brackets): the trace of local deliveries and forwards (loop protection)."""
    out = []
    for match in _DELIVERED_TO.finditer(headers):
        value = b" ".join(match.group(1).split()).decode("utf-8", "replace").strip()
        out.append(value[1:-1] if value.startswith("<") and value.endswith(">") else value)
    return out
