"""The local delivery agent: recipients routed to a user's mailbox, Maildir or mbox.

Owns: the mailbox path templates it was given, the path of each route's mailbox
(`path_for`, by the rule in `routing/user_mailbox.py`, which `posthorn read --user`
follows too), and turning the result into an `Outcome` per recipient. Runs the file
work on a worker thread. Does not own routing, the steps every local agent shares
(loop check, Return-Path and Delivered-To, LF line endings: `final.py`) or the mailbox
formats (`maildir.py`, `mbox.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.config import Config
from posthorn.delivery import maildir, mbox
from posthorn.delivery.final import busy, final_form
from posthorn.outcome import Delivered, Failed, Outcome, from_oserror
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.router import Mailbox, Mbox, Route
from posthorn.routing.user_mailbox import mailbox_path
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

    @classmethod
    def from_config(cls, config: Config) -> LocalDelivery:
        local, server = config.local, config.server
        return cls(local.maildir, server.data_dir, server.hostname, local.mbox)

    def maildir_for(self, user: str) -> Path:
        return self.path_for(Mailbox(user))

    def mbox_for(self, user: str) -> Path:
        return self.path_for(Mbox(user))

    def path_for(self, route: Mailbox | Mbox) -> Path:
        """The mailbox file (mbox) or directory (Maildir) that `route` delivers into."""
        return mailbox_path(
            route,
            maildir_template=self.template,
            mbox_template=self.mbox_template,
            data_dir=self.data_dir,
        )

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
                fresh = mbox.append(self.path_for(route), item)
                kind = "mbox"
            else:
                fresh = self._maildir(message, self.path_for(route), rcpt, data)
                kind = "maildir"
        except mbox.MailboxBusy as exc:
            return busy(exc, "local")
        except OSError as exc:
            return from_oserror(exc, "local")
        note = f"delivered to {kind}" if fresh else f"already delivered to {kind}"
        return Delivered(Reply(250, "2.0.0", (note,)), "local")

    def _maildir(
        self, message: QueuedMessage, path: Path, rcpt: RecipientStatus, data: bytes
    ) -> bool:
        name = maildir.unique_name(
            message.envelope.arrival, message.qid, rcpt.index, self.hostname, len(data)
        )
        return maildir.deliver(path, name, data)
