"""The SQLite store's own promises (the shared contract is tested for every store)."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.sqlite import SqliteStore


def _message() -> NewMessage:
    envelope = Envelope(Address("a", "example.org"), (Recipient(Address("b", "localhost")),))
    return NewMessage(new_queue_id(), envelope, b"Subject: x\r\n\r\nbody\r\n")


def test_queue_files_are_private(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(tmp_path / "queue" / "queue.db")
        await store.open()
        await store.commit(_message())
        await store.close()

    asyncio.run(run())
    assert stat.S_IMODE((tmp_path / "queue").stat().st_mode) == 0o700
    for path in (tmp_path / "queue").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_processes_opening_together_create_the_schema_once(tmp_path: Path) -> None:
    """Worker processes (and operator commands) may open a new queue at the same time."""

    async def run() -> None:
        stores = [SqliteStore(tmp_path / "queue.db") for _ in range(8)]
        await asyncio.gather(*(s.open() for s in stores))
        await asyncio.gather(*(s.commit(_message()) for s in stores))
        await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (8,)
