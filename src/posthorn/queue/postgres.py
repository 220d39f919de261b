"""The shared queue store: one PostgreSQL database that several Posthorn nodes use at once.

Owns: the connections (a writer, a reader, a listener), group commit (every write that
arrives while a transaction is in flight joins the next one, so many sessions' messages
share one commit and one WAL flush), reconnecting after PostgreSQL comes back, and
waking other nodes: a batch that made mail due sends `NOTIFY posthorn_queue`, and each
node's listener wakes its runner for the other nodes' notifications. Uses psycopg 3.
Does not own the SQL (`postgres_rows.py`) or any policy; see `store.py` for the contract.

Raises `StoreError` when the database cannot be reached or refuses a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from posthorn import log
from posthorn.queue import postgres_rows as rows
from posthorn.queue import postgres_schema as schema
from posthorn.queue.model import NewMessage, QueuedMessage, RecipientUpdate
from posthorn.queue.store import QueueIdTaken, StoreError

__all__ = ["PostgresStore", "connect", "init_schema"]

T = TypeVar("T")
_log = log.get("queue")
_CHANNEL = "posthorn_queue"
_MAX_BATCH = 512
_OpFn = Callable[[rows.Conn], Awaitable[Any]]


@dataclass(slots=True)
class _Op:
    """One write waiting for the next transaction. `message` marks a plain commit (all
    of a batch's are inserted together); `wakes` says it can make mail due."""

    fn: _OpFn | None
    future: asyncio.Future[Any]
    message: NewMessage | None = None
    wakes: bool = False


class PostgresStore:
    """QueueStore on PostgreSQL; writes batched into shared transactions."""

    def __init__(self, dsn: str, *, node: str = "", timeout: float = 30.0) -> None:
        self.dsn = dsn
        self.node = node
        self.timeout = timeout
        self._ops: asyncio.Queue[_Op | None] = asyncio.Queue()
        self._writer: rows.Conn | None = None
        self._reader: rows.Conn | None = None
        self._read_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: list[Callable[[], None]] = []

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another node makes mail due (set before `open`)."""
        self._watchers.append(callback)

    # -- connections -----------------------------------------------------------------

    async def _connect(self) -> rows.Conn:
        return await connect(self.dsn, self.timeout)

    async def open(self) -> None:
        self._writer = await self._connect()
        try:
            before = await schema.migrate(self._writer)
        except psycopg.Error as exc:
            raise StoreError(f"cannot set up the queue schema: {exc}") from exc
        if before != schema.SCHEMA_VERSION:
            _log.info("queue schema migrated from version %d to %d", before, schema.SCHEMA_VERSION)
        self._reader = await self._connect()
        self._tasks.append(asyncio.create_task(self._write_loop(), name="pg-writer"))
        if self._watchers:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="pg-listener"))

    async def close(self) -> None:
        if self._tasks:
            self._ops.put_nowait(None)
            await asyncio.wait([self._tasks[0]], timeout=self.timeout)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    async def _usable(self, conn: rows.Conn | None) -> rows.Conn:
        """`conn`, or a new connection when it is gone (PostgreSQL restarted)."""
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            await conn.close()
        return await self._connect()

    # -- group commit ----------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            first = await self._ops.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _MAX_BATCH and not self._ops.empty():
                item = self._ops.get_nowait()
                if item is None:
                    await self._run(batch)
                    return
                batch.append(item)
            await self._run(batch)

    async def _run(self, batch: list[_Op]) -> None:
        try:
            self._writer = await self._usable(self._writer)
            results = await self._transaction(self._writer, batch)
        except (psycopg.Error, TimeoutError, StoreError) as exc:
            if isinstance(exc, TimeoutError) and self._writer is not None:
                await self._writer.close()  # in an unknown state: start afresh next time
            writer = self._writer
            if len(batch) > 1 and writer is not None and not (writer.closed or writer.broken):
                # One op's error (a duplicate queue id, a deadlock) aborted everyone's
                # transaction: redo each op alone so that only the guilty one fails.
                for op in batch:
                    await self._run([op])
                return
            error = exc if isinstance(exc, StoreError) else StoreError(f"queue database: {exc}")
            if isinstance(exc, psycopg.errors.UniqueViolation):
                error = QueueIdTaken(f"queue database: {exc}")
            results = [(op.future, None, error) for op in batch]
        for future, value, failure in results:
            if future.cancelled():
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(value)

    async def _transaction(
        self, conn: rows.Conn, batch: list[_Op]
    ) -> list[tuple[asyncio.Future[Any], Any, StoreError | None]]:
        commits = [op.message for op in batch if op.message is not None]
        values: list[Any] = []
        async with asyncio.timeout(self.timeout), conn.transaction():
            if commits:
                await rows.insert(conn, commits)
            for op in batch:
                values.append(None if op.fn is None else await op.fn(conn))
            if any(op.wakes for op in batch):
                # Delivered at COMMIT, to every node listening (PostgreSQL folds
                # duplicates within one transaction).
                await conn.execute("SELECT pg_notify(%s, %s)", (_CHANNEL, self.node))
        return [(op.future, value, None) for op, value in zip(batch, values, strict=True)]

    async def _write(self, fn: _OpFn | None, *, message: NewMessage | None = None,
                     wakes: bool = False) -> Any:  # fmt: skip
        if not self._tasks:
            raise StoreError("queue store is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(_Op(fn, future, message, wakes))
        return await future

    async def _read(self, fn: Callable[[rows.Conn], Awaitable[T]]) -> T:
        """Reads go over their own connection, so that large contents never hold up the
        writer's batches."""
        async with self._read_lock:
            try:
                self._reader = await self._usable(self._reader)
                async with asyncio.timeout(self.timeout):
                    return await fn(self._reader)
            except (psycopg.Error, TimeoutError) as exc:
                if self._reader is not None:
                    await self._reader.close()
                raise StoreError(f"queue database: {exc}") from exc

    # -- other nodes' changes --------------------------------------------------------

    async def _listen_loop(self) -> None:
        delay = 1.0
        while True:
            try:
                conn = await self._connect()
                async with conn:
                    await conn.execute(f"LISTEN {_CHANNEL}")
                    delay = 1.0
                    self._changed()  # anything missed while not listening
                    async for note in conn.notifies():
                        if note.payload != self.node:
                            self._changed()
            except (psycopg.Error, StoreError) as exc:
                _log.warning("queue notifications lost (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _changed(self) -> None:
        for callback in self._watchers:
            callback()

    # -- the QueueStore protocol -----------------------------------------------------

    async def commit(self, message: NewMessage) -> None:
        await self._write(None, message=message, wakes=not message.hold)

    async def claim(self, now: float, limit: int, lease: float, owner: str) -> list[QueuedMessage]:
        result: list[QueuedMessage] = await self._write(
            lambda conn: rows.claim(conn, now, limit, now + lease, owner)
        )
        return result

    async def lease(self, qid: str, now: float, lease: float, owner: str) -> QueuedMessage | None:
        result: QueuedMessage | None = await self._write(
            lambda conn: rows.lease(conn, qid, now, now + lease, owner)
        )
        return result

    async def content(self, qid: str) -> bytes | None:
        return await self._read(lambda conn: rows.content(conn, qid))

    async def record(
        self,
        qid: str,
        updates: Sequence[RecipientUpdate],
        owner: str,
        new_messages: Sequence[NewMessage] = (),
    ) -> None:
        # Deferrals are due later (the recording node's own timer covers them); bounces
        # are due now, so those wake the other nodes.
        applied = await self._write(
            lambda conn: rows.record(conn, qid, updates, owner, new_messages),
            wakes=bool(new_messages),
        )
        if not applied:
            _log.warning("%s: lease lost to another node; results of this run dropped", qid)

    async def release(self, qid: str, owner: str) -> None:
        await self._write(lambda conn: rows.release(conn, qid, owner), wakes=True)

    async def release_all(self, owner: str) -> int:
        count: int = await self._write(lambda conn: rows.release_all(conn, owner), wakes=True)
        return count

    async def renew(self, qids: Sequence[str], owner: str, until: float) -> int:
        count: int = await self._write(lambda conn: rows.renew(conn, qids, owner, until))
        return count

    async def next_due(self) -> float | None:
        return await self._read(rows.next_due)

    async def get(self, qid: str) -> QueuedMessage | None:
        return await self._read(lambda conn: rows.get(conn, qid))

    async def list(self) -> list[QueuedMessage]:
        return await self._read(rows.list_all)

    async def set_hold(self, qid: str, hold: bool) -> bool:
        done: bool = await self._write(lambda conn: rows.set_hold(conn, qid, hold), wakes=True)
        return done

    async def delete(self, qid: str) -> bool:
        done: bool = await self._write(lambda conn: rows.delete(conn, qid))
        return done

    async def reschedule(
        self, when: float, qid: str | None = None, domain: str | None = None
    ) -> int:
        count: int = await self._write(
            lambda conn: rows.reschedule(conn, when, qid, domain), wakes=True
        )
        return count


async def connect(dsn: str, connect_timeout: float = 30.0) -> rows.Conn:
    """A connection in autocommit mode (transactions are explicit) that never
    acknowledges a commit before it is durable. Raises StoreError."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout))
        )
        cursor = await conn.execute("SHOW synchronous_commit")
        row = await cursor.fetchone()
        if row is not None and row[0] == "off":
            # The 250 promises the message is on stable storage: never acknowledge a
            # commit before its WAL record is flushed, whatever the server's default.
            await conn.execute("SET synchronous_commit = on")
    except (psycopg.Error, OSError) as exc:
        raise StoreError(f"cannot connect to the queue database: {exc}") from exc
    return conn


async def init_schema(dsn: str) -> tuple[int, int]:
    """Create or migrate the schema (`posthorn queue init`); (version before, after)."""
    conn = await connect(dsn)
    try:
        before = await schema.migrate(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot set up the queue schema: {exc}") from exc
    finally:
        await conn.close()
    return before, schema.SCHEMA_VERSION
