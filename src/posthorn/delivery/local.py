"""The local delivery agent: recipients routed to a user's mailbox, Maildir or mbox.

Owns: the mailbox path templates, choosing Maildir or mbox for a route, and turning the
result into an `Outcome` per recipient. Runs the file work on a worker thread. Does not
own routing, the steps every local agent shares (loop check, Return-Path and
Delivered-To, LF line endings: `final.py`) or the mailbox formats (`maildir.py`,
`mbox.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.delivery import maildir, mbox
from posthorn.delivery.final import busy, final_form
from posthorn.outcome import Delivered, Failed, Outcome, from_oserror
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.router import Mailbox, Mbox, Route
from posthorn.smtp.reply import Reply

__all__ = ["LocalDelivery"]


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
        data = final_form(message, content, rcpt)
        if isinstance(data, Failed):
            return data
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
