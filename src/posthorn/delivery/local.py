"""The local delivery agent: recipients routed to a `Mailbox` go into their Maildir.

Owns: the mailbox path template, the headers added at final delivery (Return-Path and
Delivered-To, RFC 5321 section 4.4), CRLF -> LF for the file, and turning the result into
an `Outcome` per recipient. Runs the file work on a worker thread. Does not own routing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from posthorn.delivery import maildir
from posthorn.message import eol, headers
from posthorn.outcome import Delivered, Outcome, from_oserror
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.router import Mailbox, Route
from posthorn.smtp.reply import Reply

__all__ = ["LocalDelivery"]


class LocalDelivery:
    def __init__(self, maildir_template: str, data_dir: str, hostname: str) -> None:
        self.template = maildir_template
        self.data_dir = data_dir
        self.hostname = hostname

    def maildir_for(self, user: str) -> Path:
        return Path(self.template.format(data_dir=self.data_dir, user=user))

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        """Deliver to the mailbox of `route` for each recipient routed there."""
        assert isinstance(route, Mailbox)
        return await asyncio.to_thread(
            lambda: {r.index: self._deliver(message, content, route.user, r) for r in recipients}
        )

    def _deliver(
        self, message: QueuedMessage, content: bytes, user: str, rcpt: RecipientStatus
    ) -> Outcome:
        trace = headers.return_path(message.envelope.sender) + headers.delivered_to(
            rcpt.recipient.address
        )
        data = eol.to_lf(trace + content)
        name = maildir.unique_name(
            message.envelope.arrival, message.qid, rcpt.index, self.hostname, len(data)
        )
        path = self.maildir_for(user)
        try:
            fresh = maildir.deliver(path, name, data)
        except OSError as exc:
            return from_oserror(exc, "local")
        note = "delivered to maildir" if fresh else "already delivered to maildir"
        return Delivered(Reply(250, "2.0.0", (note,)), "local")
