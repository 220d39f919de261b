"""Large contents in segment files beside the SQLite queue: stored byte-exact, found
again after a restart, and collected once no queued message needs them (or moved into
the database when a message stays queued long)."""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
from pathlib import Path

import pytest

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue import segments, sqlite_collect, sqlite_thread
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import QueueIdTaken, StoreError

LARGE = b"Subject: big\r\n\r\n" + bytes(range(256)) * 400 + b"\r\n.\r\n..\r\n"
SMALL = b"Subject: small\r\n\r\nbody\r\n"


def _message(content: bytes) -> NewMessage:
    envelope = Envelope(Address("a", "example.org"), (Recipient(Address("b", "localhost")),))
    return NewMessage(new_queue_id(), envelope, content, True)


def _files(db: Path) -> list[str]:
    directory = db.parent / "segments"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _row(db: Path, qid: str) -> tuple[bytes, str | None]:
    conn = sqlite3.connect(db)
    try:
        data, segment = conn.execute(
            "SELECT data, segment FROM contents WHERE qid = ?", (qid,)
        ).fetchone()
    finally:
        conn.close()
    return bytes(data), segment


async def _opened(db: Path) -> SqliteStore:
    store = SqliteStore(db)
    await store.open()
    return store


async def _stored(db: Path, message: NewMessage) -> None:
    """One run of the store that queues `message`: its segment is closed after it."""
    store = await _opened(db)
    await store.commit(message)
    await store.close()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_large_content_goes_to_a_segment_small_stays_inline(tmp_path: Path) -> None:
    db = tmp_path / "queue" / "queue.db"
    large, small = _message(LARGE), _message(SMALL)
    assert len(LARGE) > segments.INLINE_MAX >= len(SMALL)

    async def write() -> None:
        store = SqliteStore(db)
        await store.open()
        await store.commit(large)
        await store.commit(small)
        assert await store.content(large.qid) == LARGE
        await store.close()

    run(write())
    (name,) = _files(db)
    assert _row(db, large.qid) == (b"", name)
    assert _row(db, small.qid) == (SMALL, None)
    assert (db.parent / "segments" / name).stat().st_mode & 0o077 == 0

    async def reopen() -> None:
        store = SqliteStore(db)
        await store.open()
        assert await store.content(large.qid) == LARGE
        assert await store.content(small.qid) == SMALL
        await store.close()

    run(reopen())


def test_unused_segments_are_collected_used_ones_kept(tmp_path: Path) -> None:
    db = tmp_path / "queue" / "queue.db"
    first, second = _message(LARGE), _message(LARGE + b"2")

    async def fill() -> None:
        # Two runs of the store: two segments, one message each.
        for message in (first, second):
            await _stored(db, message)

    run(fill())
    assert len(_files(db)) == 2

    async def collect() -> None:
        store = await _opened(db)
        assert await store.delete(first.qid)
        assert await store.collect_segments(idle=0) == 1
        assert await store.content(second.qid) == LARGE + b"2"
        await store.close()

    run(collect())
    (kept,) = _files(db)
    assert _row(db, second.qid)[1] == kept


def test_a_segment_still_being_written_is_never_collected(tmp_path: Path) -> None:
    db = tmp_path / "queue" / "queue.db"

    async def both() -> None:
        writer, other = SqliteStore(db), SqliteStore(db)
        await writer.open()
        await other.open()
        message = _message(LARGE)
        await writer.commit(message)
        await writer.delete(message.qid)
        # No row names it, but the writer may append to it again: it stays.
        assert await other.collect_segments(idle=0) == 0
        assert len(_files(db)) == 1
        await writer.close()
        assert await other.collect_segments(idle=0) == 1
        await other.close()

    run(both())
    assert _files(db) == []


def test_long_queued_contents_move_into_the_database(tmp_path: Path) -> None:
    db = tmp_path / "queue" / "queue.db"
    message = _message(LARGE)

    async def go() -> None:
        await _stored(db, message)
        store = await _opened(db)
        old = db.parent / "segments" / _files(db)[0]
        os.utime(old, (1, 1))  # last written long ago
        assert await store.collect_segments(idle=0, compact_after=3600) == 0
        assert _row(db, message.qid) == (LARGE, None)
        assert await store.collect_segments(idle=0) == 1  # the next round deletes it
        assert await store.content(message.qid) == LARGE
        await store.close()

    run(go())
    assert _files(db) == []


def test_a_large_compaction_is_spread_over_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over its budget, a round stops; the writer goes on by itself soon after, and
    commits made in between are not held up until the whole compaction is done."""
    db = tmp_path / "queue" / "queue.db"
    monkeypatch.setattr(sqlite_collect, "COMPACT_BUDGET", 1)  # one content per round
    monkeypatch.setattr(sqlite_thread, "RESUME_AFTER", 0.2)
    queued = [_message(LARGE + bytes([i])) for i in range(4)]

    async def go() -> None:
        store = await _opened(db)
        for message in queued:
            await store.commit(message)
        await store.close()
        (name,) = _files(db)
        os.utime(db.parent / "segments" / name, (1, 1))  # last written long ago
        store = await _opened(db)
        assert await store.collect_segments(idle=0, compact_after=3600) == 0
        assert [_row(db, m.qid)[1] is None for m in queued].count(True) == 1
        # Between rounds, the writer commits as usual.
        await store.commit(_message(SMALL))
        for _ in range(100):
            if all(_row(db, m.qid)[1] is None for m in queued):
                break
            await asyncio.sleep(0.05)
        for message in queued:
            assert _row(db, message.qid) == (message.content, None)
        assert await store.collect_segments(idle=0) == 1  # nothing names it now
        for message in queued:
            assert await store.content(message.qid) == message.content
        await store.close()

    run(go())
    assert _files(db) == []


def test_bytes_of_a_rolled_back_append_are_skipped(tmp_path: Path) -> None:
    db = tmp_path / "queue" / "queue.db"
    message = _message(LARGE)

    async def go() -> None:
        store = await _opened(db)
        await store.commit(message)
        taken = NewMessage(message.qid, message.envelope, LARGE + b"again", True)
        with pytest.raises(QueueIdTaken):
            await store.commit(taken)  # the same queue id: refused, rolled back
        later = _message(LARGE + b"later")
        await store.commit(later)
        assert await store.content(message.qid) == LARGE
        assert await store.content(later.qid) == LARGE + b"later"
        await store.close()

    run(go())


def test_an_idle_store_sleeps_between_collection_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both threads block while there is nothing to do (a reader that polled would keep
    a core busy in every idle server)."""
    monkeypatch.setattr(sqlite_thread, "COLLECT_EVERY", 0.05)

    async def go() -> float:
        store = SqliteStore(tmp_path / "queue" / "queue.db")
        await store.open()
        await asyncio.sleep(0.2)  # past the first round
        before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(1.0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        await store.close()
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    busy = asyncio.run(go())
    assert busy < 0.3, f"{busy:.2f} s of CPU in one idle second"


def test_a_damaged_segment_fails_that_read_only(tmp_path: Path) -> None:
    """A segment cut short answers StoreError for its message; the store keeps serving."""
    db = tmp_path / "queue" / "queue.db"
    large, small = _message(LARGE), _message(SMALL)

    async def go() -> None:
        await _stored(db, large)
        (name,) = _files(db)
        os.truncate(db.parent / "segments" / name, 100)
        store = await _opened(db)
        await store.commit(small)
        with pytest.raises(StoreError):
            await store.content(large.qid)
        assert await store.content(small.qid) == SMALL
        await store.close()

    run(go())
