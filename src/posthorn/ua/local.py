"""Local submission: mail from a program on this host into the queue, in this process.

Owns: opening the queue store here, alongside a running server (the store allows
several processes), handing a prepared message to `Intake.submit` (the one door) with the
submitting user's id, running an SMTP session on standard input and output through the
server's own core and session (`sendmail -bs`), and waking the running server through
its control socket once mail was queued. Does not own preparing the message
(`sendmail.py`), the SMTP session's rules (`posthorn.receive`) or delivery.

Returns the intake's `Reply`; a store that cannot be opened raises `StoreError` or
`OSError` to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.intake import Intake
from posthorn.queue import admin
from posthorn.queue.store import QueueStore
from posthorn.receive.context import SessionContext
from posthorn.receive.stdio import serve_stdio
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.reply import Reply
from posthorn.ua.sendmail import Prepared

__all__ = ["LocalQueue", "Submitted", "smtp_session", "submit"]


@dataclass(frozen=True, slots=True)
class LocalQueue:
    """The parts of the mail system a local submission needs (built by the daemon)."""

    store: QueueStore
    intake: Intake
    data_dir: str


@dataclass(frozen=True, slots=True)
class Submitted:
    reply: Reply
    woke: bool | None  # None: nothing queued; False: no server running to wake


async def submit(queue: LocalQueue, prepared: Prepared, uid: int) -> Submitted:
    await queue.store.open()
    try:
        reply = await queue.intake.submit(
            prepared.envelope, prepared.content, uid=uid, originating=True
        )
    finally:
        await queue.store.close()
    woke = await admin.wake(queue.data_dir) if reply.is_positive else None
    return Submitted(reply, woke)


async def smtp_session(
    queue: LocalQueue, ctx: SessionContext, limits: ContentLimits, uid: int
) -> int:
    """SMTP on standard input and output; returns how many messages were queued."""
    await queue.store.open()
    try:
        session = await serve_stdio(ctx, limits, uid=uid)
    finally:
        await queue.store.close()
    accepted = session.counts["accepted"]
    if accepted:
        await admin.wake(queue.data_dir)
    return accepted
