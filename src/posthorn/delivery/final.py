"""Final delivery (RFC 5321 section 4.4): the steps every local agent shares.

Owns: the Delivered-To loop check that the mailbox, file and pipe agents apply before
they deliver (the Postfix rule), the headers added at final delivery (Return-Path and
Delivered-To) on top of the content with LF line endings (`final_form`), and the
deferrals the agents share (a busy mailbox, an account that cannot be found). Does not
own where the message goes (`local.py`, `file.py`, `pipe.py`) or the mailbox formats.

Raises nothing: problems are outcomes.
"""

from __future__ import annotations

from posthorn.address import Address, AddressError
from posthorn.delivery import mbox
from posthorn.delivery.privileges import Credentials, credentials_for
from posthorn.message import eol, headers
from posthorn.outcome import Deferred, Failed
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.accounts import Accounts
from posthorn.smtp.reply import Reply

__all__ = ["account", "busy", "final_form", "loop_check"]


def _key(text: str) -> str:
    try:
        address = Address.parse(text, utf8=True)
    except AddressError:
        return text.lower()
    return f"{address.local.lower()}@{address.domain_key}"


def loop_check(content: bytes, address: Address) -> Failed | None:
    """A message that already carries `Delivered-To: address` went round in a loop: it
    is bounced, not delivered again (the Postfix rule; RFC 3463 X.4.6)."""
    wanted = _key(str(address))
    for value in headers.delivered_to_values(headers.header_block(content)):
        if _key(value) == wanted:
            text = f"mail forwarding loop for <{address}>"
            return Failed(Reply(554, "5.4.6", (text,)), "local")
    return None


def final_form(message: QueuedMessage, content: bytes, rcpt: RecipientStatus) -> bytes | Failed:
    """What a local agent writes for `rcpt`: Return-Path and Delivered-To on top (RFC
    5321 section 4.4), LF line endings; or the bounce of a forwarding loop."""
    looped = loop_check(content, rcpt.recipient.address)
    if looped is not None:
        return looped
    added = headers.return_path(message.envelope.sender)
    added += headers.delivered_to(rcpt.recipient.address)
    return eol.to_lf(added + content)


def busy(exc: mbox.MailboxBusy, relay: str) -> Deferred:
    return Deferred(Reply(451, "4.2.0", (f"mailbox busy: {exc.strerror}",)), relay)


def account(
    user: str, accounts: Accounts | None, relay: str, doing: str
) -> Credentials | Deferred:
    """The credentials of the account a file or pipe route runs as; an account that
    cannot be found defers the delivery (RFC 3463 X.3.5: the system is misconfigured)."""
    try:
        return credentials_for(user, accounts)
    except LookupError as exc:
        return Deferred(Reply(451, "4.3.5", (f"cannot {doing}: {exc}",)), relay)
