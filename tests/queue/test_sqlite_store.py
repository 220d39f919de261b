"""The SQLite store's own promises (the shared contract is tested for every store)."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue import sqlite_thread
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import StoreError


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


def _synced_paths(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    """Record (or fail) the store's fdatasync calls, by the path of the file synced."""
    synced: list[str] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        if fail:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(sqlite_thread.os, "fdatasync", fdatasync)
    return synced


def test_a_commit_returns_only_after_the_log_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COMMIT itself does not fsync (synchronous=NORMAL); the store syncs the log before
    it resolves the commit, so that a 250 is never sent for mail not on disk."""
    synced = _synced_paths(monkeypatch)

    async def run() -> None:
        store = SqliteStore(tmp_path / "queue.db")
        await store.open()
        try:
            before = len(synced)
            await store.commit(_message())
            assert synced[before:] == [str(tmp_path / "queue.db-wal")]
            # Many sessions at once: their commits share syncs.
            before = len(synced)
            await asyncio.gather(*(store.commit(_message()) for _ in range(50)))
            assert 1 <= len(synced) - before < 50
        finally:
            await store.close()

    asyncio.run(run())


def test_a_log_that_cannot_be_synced_fails_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced_paths(monkeypatch, fail=True)

    async def run() -> None:
        store = SqliteStore(tmp_path / "queue.db")
        await store.open()
        try:
            with pytest.raises(StoreError, match="fdatasync"):
                await store.commit(_message())
        finally:
            await store.close()

    asyncio.run(run())
    assert synced
