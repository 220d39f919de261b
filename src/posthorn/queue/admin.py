"""The operator's actions on the queue: show, hold, release, delete, flush, bounce.

Owns: each action as one function over any `QueueStore` (so they work with every store,
and while the server runs: the store allows several processes at once), and waking a
running server through its control socket after a change that makes mail due now
(release, flush, the DSNs of a bounce), so that it does not wait for its next timer.
Does not own storage, delivery, giving up on a message (`giveup.py`), or how the CLI
prints results.

Returns values: which ids were changed, which were not in the queue, whether a running
server was woken. `StoreError` from the store passes through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from posthorn import control
from posthorn.message import headers
from posthorn.queue.flush import flush as flush_target
from posthorn.queue.giveup import Bounced, Busy, give_up
from posthorn.queue.model import QueuedMessage
from posthorn.queue.runner import Bouncer
from posthorn.queue.store import QueueStore

__all__ = [
    "BounceReport",
    "Done",
    "Flushed",
    "Shown",
    "bounce",
    "delete",
    "delete_all",
    "flush",
    "hold",
    "release",
    "show",
    "wake",
]


@dataclass(frozen=True, slots=True)
class Done:
    changed: tuple[str, ...]
    missing: tuple[str, ...] = ()
    woke: bool | None = None  # None: no wake-up needed; False: no server is running


@dataclass(frozen=True, slots=True)
class Flushed:
    recipients: int  # pending recipients made due now
    woke: bool  # False: no server is running (it delivers them when it starts)


@dataclass(frozen=True, slots=True)
class Shown:
    message: QueuedMessage
    header: bytes  # the header section as queued (CRLF), trace headers included


@dataclass(frozen=True, slots=True)
class BounceReport:
    bounced: tuple[Bounced, ...]
    busy: tuple[Busy, ...]  # being delivered, still after the wait
    missing: tuple[str, ...]
    woke: bool | None  # None: no DSN to send; False: no server is running


async def wake(data_dir: str | Path) -> bool:
    """Tell a running server to look at the queue now; False when none is running."""
    answer = await asyncio.to_thread(control.notify, data_dir, "WAKE")
    return answer == "OK"


async def _each(store: QueueStore, qids: Iterable[str], action: str) -> Done:
    ids = tuple(dict.fromkeys(q.upper() for q in qids))
    if action == "delete":
        results = await asyncio.gather(*(store.delete(q) for q in ids))
    else:
        results = await asyncio.gather(*(store.set_hold(q, action == "hold") for q in ids))
    return Done(
        changed=tuple(q for q, ok in zip(ids, results, strict=True) if ok),
        missing=tuple(q for q, ok in zip(ids, results, strict=True) if not ok),
    )


async def show(store: QueueStore, qid: str) -> Shown | None:
    message = await store.get(qid.upper())
    if message is None:
        return None
    content = await store.content(message.qid) or b""
    return Shown(message, headers.header_block(content))


async def hold(store: QueueStore, qids: Iterable[str]) -> Done:
    """Keep messages in the queue without delivering them (a delivery already under way
    finishes; the runner never claims a held message again)."""
    return await _each(store, qids, "hold")


async def release(store: QueueStore, qids: Iterable[str], data_dir: str | Path) -> Done:
    """Undo `hold`. The retry schedule is kept: mail held on arrival is due at once, a
    deferred message at its next attempt (`flush` makes it due now)."""
    done = await _each(store, qids, "release")
    if not done.changed:
        return done
    return Done(done.changed, done.missing, await wake(data_dir))


async def delete(store: QueueStore, qids: Iterable[str]) -> Done:
    """Remove messages from the queue without delivering them or bouncing them."""
    return await _each(store, qids, "delete")


async def delete_all(store: QueueStore) -> Done:
    return await delete(store, [m.qid for m in await store.list()])


async def flush(
    store: QueueStore, data_dir: str | Path, now: float, target: str | None = None
) -> Flushed:
    """Make pending recipients due now (all, one message's, or one domain's: see
    `queue.flush.parse_target`) and wake the server to deliver them (`posthorn queue
    flush`, `sendmail -q`; RFC 1985 ETRN asks for the same from a client)."""
    count = await flush_target(store, now, target)
    return Flushed(count, await wake(data_dir))


async def bounce(
    store: QueueStore,
    qids: Iterable[str],
    bouncer: Bouncer,
    data_dir: str | Path,
    *,
    owner: str,
    lease: float,
    clock: Callable[[], float],
    wait: float,
    on_wait: Callable[[Busy], None] = lambda busy: None,
) -> BounceReport:
    """Give up on messages now: fail their pending recipients and send the sender a
    DSN, as an expiry would (`giveup.py`); then wake the server to deliver the DSNs."""
    bounced: list[Bounced] = []
    busy: list[Busy] = []
    missing: list[str] = []
    for qid in dict.fromkeys(q.upper() for q in qids):
        result = await give_up(
            store, qid, bouncer, owner=owner, lease=lease, clock=clock, wait=wait,
            on_wait=on_wait,
        )  # fmt: skip
        if result is None:
            missing.append(qid)
        elif isinstance(result, Busy):
            busy.append(result)
        else:
            bounced.append(result)
    notices = any(b.notices for b in bounced)
    woke = await wake(data_dir) if notices else None
    return BounceReport(tuple(bounced), tuple(busy), tuple(missing), woke)
