"""The embedded queue store: one SQLite database (WAL) under the data directory.

Owns: the QueueStore operations on SQLite: which run on the writer thread and which on
the reader (`sqlite_thread.py` owns both threads and group commit), and content: small
contents in their rows, large ones in segment files (`segments.py`), each read back from
where it lives. Message content lives in its own table, so listing and claiming never
read it. Does not own policy (see `store.py` for the contract), the SQL
(`sqlite_rows.py`) or the schema and the switch to WAL (`sqlite_schema.py`).

Raises `StoreError` when the database cannot be written, and `ContentUnreadable` (a
subclass) when a content's segment cannot be read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from posthorn import log
from posthorn.queue import segments
from posthorn.queue import sqlite_rows as rows
from posthorn.queue.model import NewMessage, QueuedMessage, RecipientUpdate
from posthorn.queue.sqlite_thread import COMPACT_AFTER, SEGMENT_IDLE, DbThread
from posthorn.queue.store import ContentUnreadable

__all__ = ["SqliteStore"]

T = TypeVar("T")
_log = log.get("queue")


class SqliteStore:
    """QueueStore on SQLite: writes on one thread in batched transactions, reads on
    another."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = DbThread(path, "posthorn-queue", writer=True)
        self._reader = DbThread(path, "posthorn-queue-read", writer=False)

    async def open(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, mode=0o700, parents=True, exist_ok=True)
        await self._writer.open()  # creates or migrates the schema first
        await self._reader.open()

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.call(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.call(fn)

    # -- the QueueStore protocol -----------------------------------------------------

    def _insert(self, conn: sqlite3.Connection, message: NewMessage) -> None:
        """On the writer thread: a large content goes to a segment, the rest to rows."""
        ref = None
        if len(message.content) > segments.INLINE_MAX:
            ref = self._writer.segments.append(message.content)
        rows.insert(conn, message, ref)

    async def commit(self, message: NewMessage) -> None:
        await self._call(lambda conn: self._insert(conn, message))

    async def claim(self, now: float, limit: int, lease: float, owner: str) -> list[QueuedMessage]:
        return await self._call(lambda conn: rows.claim(conn, now, limit, now + lease, owner))

    async def lease(self, qid: str, now: float, lease: float, owner: str) -> QueuedMessage | None:
        return await self._call(lambda conn: rows.lease(conn, qid, now, now + lease, owner))

    async def content(self, qid: str) -> bytes | None:
        return await self._read(lambda conn: self._content(conn, qid))

    def _content(self, conn: sqlite3.Connection, qid: str) -> bytes | None:
        stored = rows.content(conn, qid)
        if stored is None or isinstance(stored, bytes):
            return stored
        try:
            return segments.read(self._writer.segments.directory, *stored)
        except FileNotFoundError:
            # Collected after this read's snapshot began: the message is gone.
            return None
        except (OSError, EOFError) as exc:
            raise ContentUnreadable(f"{qid}: content segment {stored[0]}: {exc}") from exc

    async def collect_segments(
        self, idle: float = SEGMENT_IDLE, compact_after: float = COMPACT_AFTER
    ) -> int:
        """Collect segments now (the writer also does every COLLECT_EVERY seconds);
        returns how many were deleted."""
        return await self._writer.collect_round(idle, compact_after)

    async def record(
        self,
        qid: str,
        updates: Sequence[RecipientUpdate],
        owner: str,
        new_messages: Sequence[NewMessage] = (),
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if not rows.holds_lease(conn, qid, owner):
                # Another run took the message over: see the contract in store.py.
                _log.warning("%s: lease lost; results of this run dropped", qid)
                return
            for message in new_messages:
                self._insert(conn, message)
            rows.record(conn, qid, updates, owner)

        await self._call(op)

    async def release(self, qid: str, owner: str) -> None:
        await self._call(lambda conn: rows.release(conn, qid, owner))

    async def release_all(self, owner: str) -> int:
        return await self._call(lambda conn: rows.release_all(conn, owner))

    async def renew(self, qids: Sequence[str], owner: str, until: float) -> int:
        return await self._call(lambda conn: rows.renew(conn, qids, owner, until))

    async def next_due(self) -> float | None:
        return await self._read(rows.next_due)

    async def get(self, qid: str) -> QueuedMessage | None:
        return await self._read(lambda conn: rows.get(conn, qid))

    async def list(self) -> list[QueuedMessage]:
        return await self._read(rows.list_all)

    async def set_hold(self, qid: str, hold: bool) -> bool:
        return await self._call(lambda conn: rows.set_hold(conn, qid, hold))

    async def delete(self, qid: str) -> bool:
        return await self._call(lambda conn: rows.delete(conn, qid))

    async def reschedule(
        self, when: float, qid: str | None = None, domain: str | None = None
    ) -> int:
        return await self._call(lambda conn: rows.reschedule(conn, when, qid, domain))
