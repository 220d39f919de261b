"""The file delivery agent: `/path` targets of aliases and forward files, as mbox appends.

Owns: delivering a `File` route: the loop check and delivery headers of local delivery,
the mbox entry, and the append done with the privileges of the route's account when
running as root (in a child process, see `privileges.py`), so that a forward file
cannot write where its owner could not. Does not own the mbox format (`mbox.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.delivery import mbox
from posthorn.delivery.local import busy, delivery_headers, loop_check
from posthorn.delivery.privileges import credentials_for, run_as
from posthorn.message import eol
from posthorn.outcome import Deferred, Delivered, Outcome, from_oserror
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
        looped = loop_check(content, rcpt.recipient.address)
        if looped is not None:
            return looped
        try:
            creds = credentials_for(route.user, self.accounts)
        except LookupError as exc:
            return Deferred(Reply(451, "4.3.5", (f"cannot deliver to file: {exc}",)), relay)
        data = eol.to_lf(delivery_headers(message, rcpt) + content)
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
