"""The SQLite queue's database threads: one connection on one thread, fed by a queue.

Owns: the writer thread that runs every change, with group commit twice over
(operations that arrive while a transaction is being written are batched into the next
one, and one fdatasync of the log covers every transaction committed since the last;
see `DbThread` for why that is as durable as `synchronous=FULL`), the syncing of content
segments before the log, the write turn between processes, the periodic collection
rounds, and the reader thread that runs reads beside the writer (WAL). Does not own the
operations themselves (`sqlite.py`, `sqlite_rows.py`), the schema (`sqlite_schema.py`)
or what a collection round does (`sqlite_collect.py`).

Raises `StoreError` when the database cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from posthorn import log
from posthorn.queue import segments, sqlite_schema
from posthorn.queue.sqlite_collect import Collect, collect
from posthorn.queue.store import QueueIdTaken, StoreError

__all__ = ["COMPACT_AFTER", "SEGMENT_IDLE", "DbThread"]

T = TypeVar("T")
_Future = asyncio.Future[Any]
_Op = tuple[Callable[[sqlite3.Connection], Any], _Future]
_Result = tuple[_Future, Any, BaseException | None]
_MAX_BATCH = 1024
COLLECT_EVERY = 60.0  # seconds between looks for segments that can go
SEGMENT_IDLE = 60.0  # a segment is collected only when untouched this long
COMPACT_AFTER = 3600.0  # a segment still needed this long after its last write: inline
RESUME_AFTER = 0.05  # seconds before a round that stopped at its budget goes on

_log = log.get("queue")


class DbThread:
    """One connection on one thread, fed by a queue. The writer runs everything waiting
    at once in one transaction (group commit); the reader runs reads one by one, so that
    they never wait behind a writer's fsync (WAL lets readers and a writer overlap).

    The writer's COMMIT does not fsync (`synchronous=NORMAL`); instead, once no further
    operation is waiting, it fdatasyncs the log itself and only then resolves the
    futures of every transaction committed since the last sync: no 250 goes out before
    its message is on disk. That is as durable as FULL because, in WAL mode with
    NORMAL, SQLite syncs the log before each checkpoint, the database after it, and the
    log header before the log is reused, so committed frames stay in the log until our
    sync or reach a synced database first. What it gains: a transaction holds the write
    lock (and, between worker processes, the turn) only while it writes, not during the
    fsync, so worker processes no longer wait in line for each other's syncs, and one
    sync covers several transactions."""

    def __init__(self, path: Path, name: str, *, writer: bool) -> None:
        self.path = path
        self.name = name
        self.writer = writer
        self._ops: queue.SimpleQueue[_Op | Collect | None] = queue.SimpleQueue()
        self.segments = segments.SegmentWriter(path.parent / "segments")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._wal_fd: int | None = None  # the writer's handle on the log, for fdatasync

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=self.name, daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is not None:
            self._ops.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        if self.writer:
            # Queued mail is private: the database (and the -wal and -shm files SQLite
            # creates with its mode) readable by the owner only.
            os.chmod(self.path, 0o600)
            sqlite_schema.wal(conn)
            # NORMAL: COMMIT does not fsync; `_sync` does, before any future resolves.
            conn.execute("PRAGMA synchronous=NORMAL")
            sqlite_schema.create_schema(conn)
            # The log exists from now on and keeps its inode while this connection is
            # open (SQLite removes it only when the last connection closes).
            self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        return conn

    def _run(self, ready: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            failed: list[_Result] = [(ready, None, StoreError(f"{self.path}: {exc}"))]
            loop.call_soon_threadsafe(_settle, failed)
            return
        opened: list[_Result] = [(ready, None, None)]
        loop.call_soon_threadsafe(_settle, opened)
        unsynced: list[_Result] = []  # committed, waiting for the log's fdatasync
        asked: Collect | None = None  # a round someone asked for (collect_segments)
        resume: Collect | None = None  # a round that stopped at its compaction budget
        next_collect = time.monotonic() + COLLECT_EVERY
        running = True
        while running:
            if unsynced and (self._ops.empty() or len(unsynced) >= _MAX_BATCH):
                loop.call_soon_threadsafe(_settle, self._sync(unsynced))
                unsynced = []
            if self.writer and not unsynced and (asked or time.monotonic() >= next_collect):
                assert self._wal_fd is not None
                request = asked or resume or Collect(SEGMENT_IDLE, COMPACT_AFTER)
                done, more = collect(
                    conn, self.segments.directory, request, self._turn, self._wal_fd
                )
                if asked is not None and asked.future is not None:
                    answer: list[_Result] = [(asked.future, done, None)]
                    loop.call_soon_threadsafe(_settle, answer)
                # What is left goes on soon, after the commits that waited for this round.
                asked = None
                resume = Collect(request.idle, request.compact_after) if more else None
                next_collect = time.monotonic() + (RESUME_AFTER if more else COLLECT_EVERY)
            # The writer wakes for its next collection round; the reader only for work.
            wait = max(0.0, next_collect - time.monotonic()) if self.writer else None
            try:
                first = self._ops.get(timeout=wait)
            except queue.Empty:
                continue
            if first is None:
                break
            if isinstance(first, Collect):
                asked = first
                continue
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._ops.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    running = False
                    break
                if isinstance(item, Collect):
                    asked = item  # after this batch is written and synced
                    break
                batch.append(item)
            if self.writer:
                with self._turn():
                    unsynced += self._transaction(conn, batch)
            else:
                loop.call_soon_threadsafe(_settle, self._reads(conn, batch))
        if unsynced:
            loop.call_soon_threadsafe(_settle, self._sync(unsynced))
        self.segments.close()
        conn.close()
        for fd in (self._lock_fd, self._wal_fd):
            if fd is not None:
                os.close(fd)

    def _sync(self, unsynced: list[_Result]) -> list[_Result]:
        """Make the committed transactions durable; if the log cannot be synced, none
        of them may be acknowledged."""
        assert self._wal_fd is not None
        try:
            # The segment first: a row is durable only with the content it names.
            self.segments.sync()
            os.fdatasync(self._wal_fd)
        except OSError as exc:
            _log.error("fdatasync of the queue log failed: %s", exc)
            error = StoreError(f"queue: fdatasync: {exc}")
            return [(future, None, error) for future, _, _ in unsynced]
        return unsynced

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the queue's write lock file for one transaction.

        Worker processes (and operator commands) write to the same database. SQLite's
        own busy handler makes a waiting writer sleep in growing steps (1, 2, 5, ... ms),
        so that under steady contention one process starves while the other commits
        back to back. An flock(2) wait wakes the waiter as soon as the lock is free, so
        processes take turns; uncontended, it costs two system calls per transaction."""
        if self._lock_fd is None:
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _reads(conn: sqlite3.Connection, batch: list[_Op]) -> list[_Result]:
        results: list[_Result] = []
        for fn, future in batch:
            try:
                # Each read in its own read transaction: one consistent snapshot (WAL).
                conn.execute("BEGIN")
                try:
                    results.append((future, fn(conn), None))
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                results.append((future, None, StoreError(f"queue database: {exc}")))
            except StoreError as exc:  # a content segment that cannot be read
                results.append((future, None, exc))
        return results

    @staticmethod
    def _transaction(conn: sqlite3.Connection, batch: list[_Op]) -> list[_Result]:
        """Run a batch in one transaction.

        Optimistically as one block first: a savepoint around each op costs two more
        statements per op, and each statement lets the GIL go and come back, which the
        event-loop thread, busy with the sessions, then has to wait for. Only when an op
        breaks a key (a queue id already taken, which is rare) is the batch undone and
        run again with each op in its own savepoint, so that the others still commit."""
        if len(batch) == 1:
            return DbThread._alone(conn, *batch[0])
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results: list[_Result] = [(future, fn(conn), None) for fn, future in batch]
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                return DbThread._one_by_one(conn, batch)
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:  # OSError: appending to a segment
            return DbThread._failed(conn, batch, exc)
        return results

    @staticmethod
    def _failed(conn: sqlite3.Connection, batch: list[_Op], exc: Exception) -> list[_Result]:
        """The whole batch fails: roll back what it wrote and fail every op."""
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        error = StoreError(f"queue database: {exc}")
        return [(future, None, error) for _, future in batch]

    @staticmethod
    def _one_by_one(conn: sqlite3.Connection, batch: list[_Op]) -> list[_Result]:
        """Run a batch in one transaction, each op in its own savepoint."""
        results: list[_Result] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in batch:
                conn.execute("SAVEPOINT op")
                try:
                    value = fn(conn)
                except sqlite3.IntegrityError as exc:
                    # Only a queue id that is already taken breaks a key (every key
                    # starts with the queue id); the op is undone, the others commit.
                    conn.execute("ROLLBACK TO op")
                    results.append((future, None, QueueIdTaken(str(exc))))
                else:
                    results.append((future, value, None))
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:  # OSError: appending to a segment
            return DbThread._failed(conn, batch, exc)
        return results

    @staticmethod
    def _alone(
        conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any], future: _Future
    ) -> list[_Result]:
        """A batch of one (a quiet moment): its own transaction, without the savepoint
        that only keeps one op's failure from undoing the others."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                value = fn(conn)
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                return [(future, None, QueueIdTaken(str(exc)))]
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:  # OSError: appending to a segment
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(future, None, StoreError(f"queue database: {exc}"))]
        return [(future, value, None)]

    async def collect_round(self, idle: float, compact_after: float) -> int:
        """A collection round on the writer, after what is queued before it."""
        if self._thread is None or self._loop is None:
            raise StoreError("queue store is not open")
        future: asyncio.Future[int] = self._loop.create_future()
        self._ops.put(Collect(idle, compact_after, future))
        return await future

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._thread is None or self._loop is None:
            raise StoreError("queue store is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._ops.put((fn, future))
        return await future


def _settle(results: list[_Result]) -> None:
    """Resolve a batch's futures on the event loop (one wake-up for the whole batch)."""
    for future, value, error in results:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
