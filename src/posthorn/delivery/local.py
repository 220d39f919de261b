"""The local delivery agent: recipients routed to a user's mailbox, Maildir or mbox.

Owns: the mailbox path templates, the headers added at final delivery (Return-Path and
Delivered-To, RFC 5321 section 4.4), the Delivered-To loop check that every local
agent (mailbox, file, pipe) applies before it delivers, CRLF -> LF for the file, and
turning the result into an `Outcome` per recipient. Runs the file work on a worker
thread. Does not own routing or the mailbox formats (`maildir.py`, `mbox.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.address import Address, AddressError
from posthorn.delivery import maildir, mbox
from posthorn.message import eol, headers
from posthorn.outcome import Deferred, Delivered, Failed, Outcome, from_oserror
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.router import Mailbox, Mbox, Route
from posthorn.smtp.reply import Reply

__all__ = ["LocalDelivery", "busy", "delivery_headers", "loop_check"]


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


def delivery_headers(message: QueuedMessage, rcpt: RecipientStatus) -> bytes:
    return headers.return_path(message.envelope.sender) + headers.delivered_to(
        rcpt.recipient.address
    )


def busy(exc: mbox.MailboxBusy, relay: str) -> Deferred:
    return Deferred(Reply(451, "4.2.0", (f"mailbox busy: {exc.strerror}",)), relay)


class LocalDelivery:
    def __init__(
        self,
        maildir_template: str,
        data_dir: str,
        hostname: str,
        mbox_template: str = "{data_dir}/mail/{user}/mbox",
    ) -> None:
        self.template = maildir_template
        self.mbox_template = mbox_template
        self.data_dir = data_dir
        self.hostname = hostname

    def maildir_for(self, user: str) -> Path:
        return Path(self.template.format(data_dir=self.data_dir, user=user))

    def mbox_for(self, user: str) -> Path:
        return Path(self.mbox_template.format(data_dir=self.data_dir, user=user))

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        """Deliver to the mailbox of `route` for each recipient routed there."""
        assert isinstance(route, Mailbox | Mbox)
        return await asyncio.to_thread(
            lambda: {r.index: self._deliver(message, content, route, r) for r in recipients}
        )

    def _deliver(
        self, message: QueuedMessage, content: bytes, route: Mailbox | Mbox, rcpt: RecipientStatus
    ) -> Outcome:
        looped = loop_check(content, rcpt.recipient.address)
        if looped is not None:
            return looped
        data = eol.to_lf(delivery_headers(message, rcpt) + content)
        try:
            if isinstance(route, Mbox):
                item = mbox.entry(message.envelope.sender, message.envelope.arrival, data)
                fresh = mbox.append(self.mbox_for(route.user), item)
                kind = "mbox"
            else:
                fresh = self._maildir(message, route.user, rcpt, data)
                kind = "maildir"
        except mbox.MailboxBusy as exc:
            return busy(exc, "local")
        except OSError as exc:
            return from_oserror(exc, "local")
        note = f"delivered to {kind}" if fresh else f"already delivered to {kind}"
        return Delivered(Reply(250, "2.0.0", (note,)), "local")

    def _maildir(
        self, message: QueuedMessage, user: str, rcpt: RecipientStatus, data: bytes
    ) -> bool:
        name = maildir.unique_name(
            message.envelope.arrival, message.qid, rcpt.index, self.hostname, len(data)
        )
        return maildir.deliver(self.maildir_for(user), name, data)
