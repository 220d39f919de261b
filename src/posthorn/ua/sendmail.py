"""What the sendmail interface reads, made ready for the queue: envelope and content.

Owns: where the message ends (end of input; without -i also a line holding a single
'.'), CRLF line endings for the queue (`message.eol`), the recipients (command line, and
with -t the To, Cc and Bcc fields, or the Resent- ones when present, RFC 5322 section
3.6.6), removing Bcc and Resent-Bcc from the header section as bytes while the rest stays
byte for byte (RFC 5322 section 3.6.3: the Bcc recipients must not be shown), a From
field when the message has none (with -F's full name; the email package encodes it),
completing unqualified addresses with the host name, and the DSN parameters (RFC 3461).
Pure; does not own queueing (`local.py`).

Raises `SendmailError` (a ValueError) carrying the sysexits code that fits.
"""

from __future__ import annotations

import email.utils
import os
import re
from dataclasses import dataclass
from email import policy as policies
from email.parser import BytesHeaderParser

from posthorn.address import Address, AddressError
from posthorn.envelope import Envelope, Recipient
from posthorn.message import eol, headers
from posthorn.ua.sendmail_options import SendmailArgs

__all__ = ["Prepared", "SendmailError", "prepare", "remove_fields"]

_PARSER = BytesHeaderParser(policy=policies.compat32)
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class SendmailError(ValueError):
    def __init__(self, text: str, code: int) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True, slots=True)
class Prepared:
    envelope: Envelope
    content: bytes  # CRLF


def _body(data: bytes, ignore_dots: bool) -> bytes:
    text = data.replace(b"\r\n", b"\n")
    if not ignore_dots:
        # sendmail without -i: a line with a single '.' ends the message, as in SMTP.
        if text in (b".", b".\n") or text.startswith(b".\n"):
            text = b""
        else:
            end = text.find(b"\n.\n")
            if end < 0 and text.endswith(b"\n."):
                end = len(text) - 2
            if end >= 0:
                text = text[: end + 1]
    content = eol.to_crlf(text)
    return content if not content or content.endswith(b"\r\n") else content + b"\r\n"


def remove_fields(content: bytes, names: set[str]) -> bytes:
    """`content` (CRLF) without the header fields named (any case), continuation lines
    included; everything else is kept byte for byte."""
    block = headers.header_block(content) if headers.starts_with_header(content) else b""
    if not block:
        return content
    kept: list[bytes] = []
    dropping = False
    for line in block.split(b"\r\n")[:-1]:
        if line[:1] not in (b" ", b"\t"):  # a new field starts (RFC 5322 section 2.2.3)
            name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
            dropping = name in names
        if not dropping:
            kept.append(line + b"\r\n")
    return b"".join(kept) + content[len(block) :]


def _address(text: str, hostname: str) -> Address:
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if "@" not in text:
        text = f"{text}@{hostname}"  # an unqualified name is a user of this host
    try:
        return Address.parse(text, utf8=True)
    except AddressError as exc:
        raise SendmailError(f"{text}: {exc}", os.EX_DATAERR) from exc


def _from_headers(content: bytes, hostname: str) -> list[Address]:
    block = headers.header_block(content) if headers.starts_with_header(content) else b""
    fields = _PARSER.parsebytes(block)
    resent = [f"Resent-{n}" for n in ("To", "Cc", "Bcc")]
    names = resent if any(fields.get_all(n) for n in resent) else ["To", "Cc", "Bcc"]
    values = [str(v) for name in names for v in fields.get_all(name) or []]
    return [
        _address(addr, hostname)
        for _, addr in email.utils.getaddresses(values)
        if addr  # a group's `undisclosed-recipients:;` names no one
    ]


def _with_from(content: bytes, sender: Address | None, name: str, hostname: str) -> bytes:
    if headers.starts_with_header(content) and headers.has_header(
        headers.header_block(content), "From"
    ):
        return content
    address = str(sender) if sender is not None else f"MAILER-DAEMON@{hostname}"
    field = email.utils.formataddr((name, address), charset="utf-8")
    if content and not headers.starts_with_header(content):
        content = b"\r\n" + content  # the message had no header section: keep its body one
    return f"From: {field}\r\n".encode() + content


def _notify(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    words = frozenset(w.strip().upper() for w in text.split(",") if w.strip())
    # RFC 3461 section 4.1: NEVER alone, or any of SUCCESS, FAILURE, DELAY.
    if words != {"NEVER"} and not (words and words <= _NOTIFY):
        raise SendmailError(f"-N {text}: use never, or success,failure,delay", os.EX_USAGE)
    return words


def _choice(option: str, text: str | None, allowed: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    if text.upper() not in allowed:
        raise SendmailError(f"-{option} {text}: use one of {', '.join(allowed)}", os.EX_USAGE)
    return text.upper()


def _sender(args: SendmailArgs, login: str, hostname: str) -> Address | None:
    if args.sender is None:
        return _address(login, hostname)
    if args.sender.strip() in ("", "<>"):
        return None  # the null reverse-path, for programs that send bounces
    return _address(args.sender, hostname)


_ENVID = re.compile(r"[\x21-\x7e]{1,100}\Z")


def prepare(data: bytes, args: SendmailArgs, *, login: str, hostname: str) -> Prepared:
    """The envelope and queue content for what `sendmail ARGS` read as `data`."""
    content = _body(data, args.ignore_dots)
    sender = _sender(args, login, hostname)
    recipients = [_address(r, hostname) for r in args.recipients]
    if args.extract:
        recipients += _from_headers(content, hostname)
    if not recipients:
        raise SendmailError("no recipient addresses found", os.EX_USAGE)
    content = remove_fields(content, {"bcc", "resent-bcc"})
    content = _with_from(content, sender, args.full_name or "", hostname)
    if args.envid is not None and not _ENVID.match(args.envid):
        raise SendmailError("-V: the envelope id must be printable ASCII", os.EX_USAGE)
    notify = _notify(args.notify)
    unique = list(dict.fromkeys(recipients))
    head = headers.header_block(content)
    envelope = Envelope(
        sender=sender,
        recipients=tuple(Recipient(r, notify) for r in unique),
        body=_choice("B", args.body, ("7BIT", "8BITMIME"))
        or (None if content.isascii() else "8BITMIME"),
        smtputf8=any(a.needs_smtputf8 for a in (*unique, *filter(None, [sender])))
        or not head.isascii(),
        ret=_choice("R", args.ret, ("FULL", "HDRS")),
        envid=args.envid,
        protocol="",  # local submission: the Received line names the user instead
    )
    return Prepared(envelope, content)
