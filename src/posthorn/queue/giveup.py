"""Giving up on a queued message now (`posthorn queue bounce`): an expiry the operator
decides, with the bounce an expiry sends.

Owns: taking the message out of the runner's hands with a lease of its own (a held
message too; a message under another owner's lease, which is a delivery in progress, is
waited for up to a deadline and then refused, so the two never race), failing every
pending recipient with `554 5.4.7` (RFC 3463: the delivery time ran out, here by the
administrator's decision; the diagnostic keeps the last attempt's reply), asking the
runner's bouncer for the DSN (so the null sender and NOTIFY=NEVER get none, as on
expiry) and recording the failures and the DSN in one store call, which removes the
message. Does not own the DSN (`bouncer.py`, `message/bounce.py`) or waking the server
(`admin.py`).

Returns values (`Bounced`, `Busy`, None for a message not in the queue); `StoreError`
passes through, and the lease is given back first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from posthorn.outcome import Failed, Outcome
from posthorn.queue.model import QueuedMessage, RcptState, RecipientStatus, RecipientUpdate
from posthorn.queue.runner import Bouncer
from posthorn.queue.store import QueueStore, StoreError
from posthorn.smtp.reply import Reply

__all__ = ["Bounced", "Busy", "failures", "give_up"]

_CANCELLED = "Delivery cancelled by the mail system administrator"


@dataclass(frozen=True, slots=True)
class Bounced:
    qid: str
    recipients: tuple[str, ...]  # the recipients failed now
    notices: tuple[str, ...]  # queue ids of the DSNs (none for <> or NOTIFY=NEVER)
    null_sender: bool


@dataclass(frozen=True, slots=True)
class Busy:
    """Another owner (the runner) is delivering the message."""

    qid: str
    owner: str
    until: float


def failures(message: QueuedMessage) -> list[tuple[RecipientStatus, RecipientUpdate, Outcome]]:
    """Each pending recipient failed, in the runner's (status, update, outcome) form."""
    results: list[tuple[RecipientStatus, RecipientUpdate, Outcome]] = []
    for rcpt in message.pending:
        last = " ".join(rcpt.last_reply.split())  # one line, whatever a peer sent
        text = f"{_CANCELLED}; last attempt: {last}" if last else _CANCELLED
        reply = Reply(554, "5.4.7", (text,))
        update = RecipientUpdate(rcpt.index, RcptState.FAILED, str(reply), rcpt.relay)
        # No relay: the reason is ours, not a remote server's (Diagnostic-Code X-Posthorn).
        results.append((rcpt, update, Failed(reply, "")))
    return results


async def _take(
    store: QueueStore,
    qid: str,
    owner: str,
    lease: float,
    clock: Callable[[], float],
    wait: float,
    sleep: Callable[[float], Awaitable[None]],
    on_wait: Callable[[Busy], None],
) -> QueuedMessage | Busy | None:
    deadline = clock() + wait
    delay = 0.05
    waited = False
    while True:
        message = await store.lease(qid, clock(), lease, owner)
        if message is None or message.lease_owner == owner:
            return message
        busy = Busy(qid, message.lease_owner, message.lease_until)
        left = deadline - clock()
        if left <= 0:
            return busy
        if not waited:
            on_wait(busy)
            waited = True
        await sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


async def give_up(
    store: QueueStore,
    qid: str,
    bouncer: Bouncer,
    *,
    owner: str,
    lease: float,
    clock: Callable[[], float],
    wait: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_wait: Callable[[Busy], None] = lambda busy: None,
) -> Bounced | Busy | None:
    """Fail every pending recipient of `qid` now and queue the DSN. A delivery in
    progress is waited for up to `wait` seconds (`on_wait` is told once), then `Busy`."""
    taken = await _take(store, qid.upper(), owner, lease, clock, wait, sleep, on_wait)
    if not isinstance(taken, QueuedMessage):
        return taken
    message = taken
    try:
        content = await store.content(message.qid)
        if content is None:  # deleted meanwhile
            return None
        now = clock()
        results = failures(message)
        notices = bouncer(message, content, results, now)
        await store.record(message.qid, [u for _, u, _ in results], owner, notices)
    except BaseException:
        with contextlib.suppress(StoreError):
            await store.release(message.qid, owner)
        raise
    return Bounced(
        qid=message.qid,
        recipients=tuple(str(r.recipient.address) for r, _, _ in results),
        notices=tuple(n.qid for n in notices),
        null_sender=message.envelope.sender is None,
    )
