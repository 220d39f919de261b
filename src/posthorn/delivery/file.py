"""The file delivery agent: `/path` targets of aliases and forward files, as mbox appends.

Owns: delivering a `File` route: the mbox entry of the final form (`final.py`), and the
append done with the privileges of the route's account when running as root (in a child
process, see `privileges.py`), so that a forward file cannot write where its owner
could not. Does not own the mbox format (`mbox.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.delivery import mbox
from posthorn.delivery.final import account, busy, final_form
from posthorn.delivery.privileges import run_as
from posthorn.outcome import Deferred, Delivered, Failed, Outcome, from_oserror
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.accounts import Accounts
from posthorn.routing.routes import File, Route
from posthorn.smtp.reply import Reply

__all__ = ["FileDelivery"]


class FileDelivery:
    def __init__(self, accounts: Accounts | None = None) -> None:
        self.accounts = accounts

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        assert isinstance(route, File)
        return await asyncio.to_thread(
            lambda: {r.index: self._deliver(message, content, route, r) for r in recipients}
        )

    def _deliver(
        self, message: QueuedMessage, content: bytes, route: File, rcpt: RecipientStatus
    ) -> Outcome:
        relay = f"file:{route.path}"
        data = final_form(message, content, rcpt)
        if isinstance(data, Failed):
            return data
        creds = account(route.user, self.accounts, relay, "deliver to file")
        if isinstance(creds, Deferred):
            return creds
        item = mbox.entry(message.envelope.sender, message.envelope.arrival, data)
        path = Path(route.path)
        try:
            fresh = run_as(creds, lambda: mbox.append(path, item, create_dirs=False))
        except mbox.MailboxBusy as exc:
            return busy(exc, relay)
        except OSError as exc:
            return from_oserror(exc, relay)
        note = "delivered to file" if fresh else "already delivered to file"
        return Delivered(Reply(250, "2.0.0", (f"{note} {route.path}",)), relay)
