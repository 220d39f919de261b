"""The queue store seam: what any backing store (SQLite, PostgreSQL) must provide.

Owns: the `QueueStore` protocol and its contract, written down here once:
- `commit` returns only after the messages are on stable storage (the 250 depends on it);
  an implementation batches concurrent commits into one transaction (group commit).
- `claim` leases due messages to one owner for `lease` seconds; a message under another
  owner's unexpired lease is never claimed; held messages are never claimed.
- `lease` takes one message by id (held or not, due or not) for an operator's action,
  under the same rule: never from under another owner's unexpired lease.
- `record` applies per-recipient updates, commits any new messages (bounces) in the same
  transaction, releases the lease, and deletes the message when nothing is pending; but
  only while `owner` still holds the lease: the results of a node that lost its lease
  (another node claimed the message after it expired) are dropped, so that a stalled node
  that comes back never overwrites what another node did.
- `renew` extends the leases of messages still being delivered, so that a lease can be
  short (a dead node's work is taken over soon) and a long delivery still keeps it.
Does not own any policy (retry timing, bounces): those are the runner's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from posthorn.queue.model import NewMessage, QueuedMessage, RecipientUpdate

__all__ = ["ContentUnreadable", "QueueIdTaken", "QueueStore", "StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked (disk full, database gone); transient."""


class ContentUnreadable(StoreError):
    """The store answered, but this message's content cannot be read (its segment file
    is damaged or unreadable): the message's trouble, not the store's."""


class QueueIdTaken(StoreError):
    """A message with this queue id is already queued: ids made by two processes met in
    the same microsecond. Nothing was written; the same message with new ids may be."""


class QueueStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def commit(self, message: NewMessage) -> None:
        """Durably add one message; concurrent calls share one transaction."""

    async def claim(self, now: float, limit: int, lease: float, owner: str) -> list[QueuedMessage]:
        """Lease up to `limit` messages that have a pending recipient due at `now`."""

    async def lease(self, qid: str, now: float, lease: float, owner: str) -> QueuedMessage | None:
        """Lease one message to `owner` unless another owner's lease is unexpired. Returns
        the message as it now stands (`lease_owner == owner` when taken; another owner's
        lease when not), or None when it is not in the queue."""

    async def content(self, qid: str) -> bytes | None: ...

    async def record(
        self,
        qid: str,
        updates: Sequence[RecipientUpdate],
        owner: str,
        new_messages: Sequence[NewMessage] = (),
    ) -> None: ...

    async def release(self, qid: str, owner: str) -> None:
        """Give a lease back without recording anything."""

    async def release_all(self, owner: str) -> int:
        """Drop every lease of `owner` (at start-up: leases of a previous life)."""

    async def renew(self, qids: Sequence[str], owner: str, until: float) -> int:
        """Extend `owner`'s leases on `qids` to `until`; how many it still held."""

    async def next_due(self) -> float | None:
        """The earliest next_attempt among pending, unheld recipients, or None."""

    async def get(self, qid: str) -> QueuedMessage | None: ...

    async def list(self) -> list[QueuedMessage]: ...

    async def set_hold(self, qid: str, hold: bool) -> bool: ...

    async def delete(self, qid: str) -> bool: ...

    async def reschedule(
        self, when: float, qid: str | None = None, domain: str | None = None
    ) -> int:
        """Make pending recipients due at `when` (all, one message, or one domain)."""
