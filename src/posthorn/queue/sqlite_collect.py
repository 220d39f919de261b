"""Collecting the SQLite store's content segments: one round, run by the writer thread.

Owns: deciding which segments go (held by no process, untouched for `idle` seconds,
named by no row) and which get their contents moved into their rows (still needed
`compact_after` seconds after their last write: deferred mail), how much one round may
move (`COMPACT_BUDGET`: one transaction, during which the writer commits nothing else),
and the order that keeps this safe against a crash. Does not own the files
(`segments.py`), the SQL (`sqlite_rows.py`) or when a round runs (`sqlite_thread.py`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posthorn import log
from posthorn.queue import segments
from posthorn.queue import sqlite_rows as rows

__all__ = ["COMPACT_BUDGET", "Collect", "collect"]

# Octets of content one round moves into rows. The writer thread runs the round, so its
# commits wait for it: 8 MiB is tens of milliseconds; the rest waits for the next round.
COMPACT_BUDGET = 8 << 20

_log = log.get("queue")


@dataclass(frozen=True)
class Collect:
    """A request to the writer for one round; `future` (an asyncio future) gets the
    number of segments deleted, None for the writer's own periodic rounds."""

    idle: float
    compact_after: float
    future: Any = None


def collect(
    conn: sqlite3.Connection,
    directory: Path,
    request: Collect,
    turn: Callable[[], contextlib.AbstractContextManager[None]],
    wal_fd: int,
) -> tuple[int, bool]:
    """One round; returns how many segments were deleted, and whether contents are
    left to move (the round stopped at `COMPACT_BUDGET`). The caller has synced
    everything its own thread committed; `turn` is the queue's write turn."""
    idle = segments.inactive(directory, request.idle)
    if not idle:
        return 0, False
    old = set(segments.inactive(directory, request.compact_after))
    try:
        with turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                unused = [name for name in idle if not rows.segment_used(conn, name)]
                moved, more = _compact(conn, directory, sorted(old.difference(unused)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        # Every commit that took a segment's last row away (in any process: they all
        # write this one log) must be on disk before the segment goes; so must the
        # contents just moved, before the next round deletes their segment.
        os.fdatasync(wal_fd)
        for name in unused:
            segments.unused(directory, name)
    except (sqlite3.Error, OSError, EOFError) as exc:
        _log.error("collecting queue segments: %s", exc)
        return 0, False
    if unused or moved:
        _log.info(
            "queue segments: %d deleted, %d contents moved into the database%s",
            len(unused), moved, " (more in the next round)" if more else "",
        )  # fmt: skip
    return len(unused), more


def _compact(conn: sqlite3.Connection, directory: Path, names: list[str]) -> tuple[int, bool]:
    """Move the contents of segments `names` into their rows, up to the budget; returns
    how many were moved, and whether some are left."""
    moved = octets = 0
    for name in names:
        for qid, offset, length in rows.segment_contents(conn, name):
            if octets >= COMPACT_BUDGET:
                return moved, True
            rows.inline_content(conn, qid, segments.read(directory, name, offset, length))
            moved, octets = moved + 1, octets + length
    return moved, False
