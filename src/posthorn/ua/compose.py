"""Composing the message a user sends: RFC 5322 headers, MIME body, envelope.

Owns: `Draft` (what the user typed), building an `email.message.EmailMessage` from it
with the headers a user agent writes (From, To, Cc, Subject, Date, Message-ID,
MIME-Version, User-Agent), the envelope (sender; recipients from To, Cc and Bcc) and the
wire form in CRLF. Bcc recipients are in the envelope only, never in a header. The stdlib
`email` package does the encoding: non-ASCII header text becomes RFC 2047 encoded words
(policy SMTP), non-ASCII text is quoted-printable, attachments are base64 parts of a
multipart/mixed. An address that cannot be written in ASCII switches to the SMTPUTF8
policy (RFC 6532), which the submission must then declare (RFC 6531).

Pure: the time, the Message-ID and the attachments' bytes are arguments; no files, no
clock. Does not own sending (`submit.py`) or reading files (`shell.py`).

Raises `ComposeError` (a ValueError) for an address that cannot be used.
"""

from __future__ import annotations

import datetime
import email.utils
import importlib.metadata
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy as policies
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from posthorn.address import Address, AddressError

__all__ = [
    "Attachment",
    "ComposeError",
    "Composed",
    "Draft",
    "compose",
    "guess_type",
    "parse_addresses",
]


def _version() -> str:
    try:
        return importlib.metadata.version("posthorn")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0"


USER_AGENT = f"Posthorn/{_version()}"


class ComposeError(ValueError):
    """The draft cannot become a message; the text says which address and why."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = ""  # "" = guessed from the file name


@dataclass(frozen=True, slots=True)
class Draft:
    """What the user asked for. Addresses are as typed: `a@b` or `Name <a@b>`, and each
    string may hold several, separated by commas (as `mail -c` takes them)."""

    sender: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = ""
    body: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Composed:
    """The message and its envelope, ready for submission."""

    message: EmailMessage
    sender: Address
    recipients: tuple[Address, ...]
    content: bytes  # CRLF line endings, as SMTP carries it
    smtputf8: bool  # an address needs RFC 6531 SMTPUTF8


def _mailbox(name: str, addr: str, typed: str) -> tuple[HeaderAddress, Address]:
    if "@" not in addr:
        raise ComposeError(f"{typed.strip()!r}: not an address (missing '@domain')")
    try:
        envelope = Address.parse(addr, utf8=True)
    except AddressError as exc:
        raise ComposeError(f"{typed.strip()!r}: {exc}") from exc
    # username/domain rather than addr_spec: the header registry refuses a non-ASCII
    # local part in addr_spec even under the SMTPUTF8 policy (RFC 6532 allows it).
    header = HeaderAddress(display_name=name, username=envelope.local, domain=envelope.domain)
    return header, envelope


def parse_addresses(values: Iterable[str]) -> list[tuple[HeaderAddress, Address]]:
    """Each typed address as (header form, envelope form); commas separate addresses."""
    found: list[tuple[HeaderAddress, Address]] = []
    for typed in values:
        pairs = [p for p in email.utils.getaddresses([typed]) if p != ("", "")]
        if typed.strip() and not pairs:
            raise ComposeError(f"{typed.strip()!r}: cannot parse this address")
        found.extend(_mailbox(name, addr, typed) for name, addr in pairs)
    return found


def guess_type(filename: str) -> tuple[str, str]:
    """(maintype, subtype) from the file name; application/octet-stream when unknown."""
    guessed, encoding = mimetypes.guess_type(filename, strict=False)
    if guessed is None or encoding is not None:
        # A compressed file (x.tar.gz) is sent as what it is, not as its contents' type.
        guessed = "application/octet-stream"
    maintype, _, subtype = guessed.partition("/")
    return maintype, subtype


def _date(now: float) -> str:
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(now).astimezone())


def _body(message: EmailMessage, text: str) -> None:
    if text and not text.endswith("\n"):
        text += "\n"
    if text.isascii():
        # 7bit, or quoted-printable when a line is too long (the email package decides).
        message.set_content(text)
    else:
        message.set_content(text, charset="utf-8", cte="quoted-printable")


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    if attachment.content_type:
        maintype, _, subtype = attachment.content_type.partition("/")
    else:
        maintype, subtype = guess_type(attachment.filename)
    # Bytes content is always base64 (RFC 2045 section 6.8), text files included, so
    # that their line endings and charset arrive exactly as they were on disk.
    message.add_attachment(
        attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
    )


def compose(
    draft: Draft,
    *,
    now: float,
    hostname: str,
    message_id: str | None = None,
) -> Composed:
    """Build the message of `draft` as of time `now` (a Unix time)."""
    senders = parse_addresses([draft.sender])
    if len(senders) != 1:
        raise ComposeError(f"{draft.sender!r}: the sender must be one address")
    sender = senders[0]
    to, cc, bcc = (parse_addresses(group) for group in (draft.to, draft.cc, draft.bcc))
    recipients = tuple(dict.fromkeys(env for _, env in (*to, *cc, *bcc)))
    if not recipients:
        raise ComposeError("no recipients")
    smtputf8 = any(a.needs_smtputf8 for a in (sender[1], *recipients))
    policy = policies.SMTPUTF8 if smtputf8 else policies.SMTP
    message = EmailMessage(policy=policy)
    message["From"] = sender[0]
    if to:
        message["To"] = [h for h, _ in to]
    elif not cc:
        # RFC 5322 section 3.6.3: a message to Bcc recipients only may show an empty group.
        message["To"] = "undisclosed-recipients:;"
    if cc:
        message["Cc"] = [h for h, _ in cc]
    # A header field is one logical line (RFC 5322 section 2.2): line breaks typed into
    # a subject become spaces, so that no text can start a header field of its own.
    message["Subject"] = " ".join(draft.subject.splitlines())
    message["Date"] = _date(now)
    message["Message-ID"] = message_id or email.utils.make_msgid(domain=hostname)
    message["MIME-Version"] = "1.0"
    message["User-Agent"] = USER_AGENT
    _body(message, draft.body)
    for attachment in draft.attachments:
        _attach(message, attachment)
    for part in message.iter_parts():
        # add_attachment makes each part an EmailMessage, which gives every part its own
        # MIME-Version; RFC 2045 section 4 wants it only at the top.
        del part["MIME-Version"]
    return Composed(message, sender[1], recipients, message.as_bytes(), smtputf8)
