"""Read what a test server queued, straight from its SQLite queue (read-only)."""

from __future__ import annotations

import sqlite3

from support.server import Server


def queued_contents(server: Server) -> list[bytes]:
    db = server.data_dir / "queue" / "queue.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [bytes(row[0]) for row in conn.execute("SELECT data FROM contents")]
