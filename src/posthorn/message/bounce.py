"""Delivery status notifications (RFC 3464) as MIME, built with the stdlib `email` package.

Owns: the text of a DSN: `multipart/report; report-type=delivery-status` (RFC 6522)
with a human-readable part, a `message/delivery-status` part (per-message fields:
Reporting-MTA, Original-Envelope-Id, Arrival-Date; per-recipient fields:
Original-Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
Last-Attempt-Date, Will-Retry-Until) and the returned message: whole
(`message/rfc822`) or headers only (`text/rfc822-headers`) as RET asks (RFC 3461 section
4.3). Pure: takes values, returns bytes. Does not own who gets a DSN or when (see
`posthorn.queue.bouncer`).
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser

from posthorn.envelope import Envelope
from posthorn.message import headers

__all__ = ["DsnEntry", "compose"]

_POLICY = email.policy.SMTPUTF8
_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
}
_INTRO = {
    "failed": "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients. It's attached below.",
    "delayed": "This is a warning only: your message could not be delivered yet\n"
    "to one or more recipients. Delivery will be retried; you do not need\n"
    "to send it again.",
    "delivered": "Your message was successfully delivered to the destination(s)\nlisted below.",
    "relayed": "Your message was relayed to a mail system that does not report\n"
    "delivery; no further notices will be sent.",
}


@dataclass(frozen=True, slots=True)
class DsnEntry:
    """One recipient's line in a DSN (RFC 3464 section 2.3)."""

    recipient: str  # the final recipient's address
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # RFC 3463 code, e.g. "5.1.1"
    diagnostic: str = ""  # the reply, e.g. "550 5.1.1 User unknown"
    remote_mta: str = ""  # host name of the peer that gave the diagnostic
    original_recipient: str | None = None  # ORCPT, "rfc822;bob@example.org"
    last_attempt: float | None = None
    retry_until: float | None = None


def _date(when: float) -> str:
    return email.utils.formatdate(when, localtime=True)


def _fields(pairs: Sequence[tuple[str, str]]) -> Message:
    block = Message(policy=email.policy.compat32)
    for name, value in pairs:
        block[name] = value
    return block


def _status_part(
    reporting_mta: str, qid: str, envelope: Envelope, entries: Sequence[DsnEntry]
) -> EmailMessage:
    per_message = [("Reporting-MTA", f"dns; {reporting_mta}"), ("X-Posthorn-Queue-ID", qid)]
    if envelope.envid:
        per_message.append(("Original-Envelope-Id", envelope.envid))
    if envelope.arrival:
        per_message.append(("Arrival-Date", _date(envelope.arrival)))
    blocks: list[Message | str] = [_fields(per_message)]
    for entry in entries:
        pairs: list[tuple[str, str]] = []
        if entry.original_recipient:
            pairs.append(("Original-Recipient", entry.original_recipient))
        pairs += [
            ("Final-Recipient", f"rfc822; {entry.recipient}"),
            ("Action", entry.action),
            ("Status", entry.status),
        ]
        if entry.remote_mta:
            pairs.append(("Remote-MTA", f"dns; {entry.remote_mta}"))
        if entry.diagnostic:
            kind = "smtp" if entry.remote_mta else "X-Posthorn"
            pairs.append(("Diagnostic-Code", f"{kind}; {entry.diagnostic}"))
        if entry.last_attempt is not None:
            pairs.append(("Last-Attempt-Date", _date(entry.last_attempt)))
        if entry.retry_until is not None:
            pairs.append(("Will-Retry-Until", _date(entry.retry_until)))
        blocks.append(_fields(pairs))
    part = EmailMessage(policy=_POLICY)
    part["Content-Type"] = "message/delivery-status"
    part["Content-Description"] = "Delivery report"
    part.set_payload(blocks)
    return part


def _human(hostname: str, action: str, entries: Sequence[DsnEntry]) -> str:
    lines = [f"This is the mail system at host {hostname}.", "", _INTRO[action], ""]
    for entry in entries:
        lines.append(f"<{entry.recipient}>: {entry.diagnostic or entry.status}")
        if entry.remote_mta:
            lines.append(f"    (reported by {entry.remote_mta})")
    return "\n".join(lines) + "\n"


def _returned(content: bytes, full: bool) -> EmailMessage:
    part = EmailMessage(policy=_POLICY)
    if full:
        original = BytesParser(policy=_POLICY).parsebytes(content)
        part["Content-Type"] = "message/rfc822"
        part["Content-Description"] = "Undelivered Message"
        part.set_payload([original])
    else:
        block = headers.header_block(content).decode("utf-8", "replace")
        part.set_content(block.replace("\r\n", "\n"), subtype="rfc822-headers")
        part["Content-Description"] = "Message Headers"
    return part


def compose(
    *,
    hostname: str,
    qid: str,
    envelope: Envelope,
    content: bytes,
    entries: Sequence[DsnEntry],
    now: float,
) -> bytes:
    """A complete DSN message (CRLF) reporting `entries`, all of one action.

    The original travels whole for failures unless RET=HDRS (RFC 3461 section 4.3);
    delay and success reports carry its headers only.
    """
    action = entries[0].action
    report = EmailMessage(policy=_POLICY)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    report["To"] = envelope.sender_text
    report["Subject"] = _SUBJECTS.get(action, "Delivery Status Notification")
    report["Date"] = _date(now)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 section 5: no replies to this
    report["MIME-Version"] = "1.0"
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    human = EmailMessage(policy=_POLICY)
    human.set_content(_human(hostname, action, entries))
    human["Content-Description"] = "Notification"
    report.attach(human)
    report.attach(_status_part(hostname, qid, envelope, entries))
    full = action == "failed" and envelope.ret != "HDRS"
    report.attach(_returned(content, full))
    return report.as_bytes(policy=_POLICY.clone(linesep="\r\n"))
