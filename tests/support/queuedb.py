"""Read what a test server queued, straight from its SQLite queue (read-only)."""

from __future__ import annotations

import sqlite3

from support.server import Server


def _connect(server: Server) -> sqlite3.Connection:
    db = server.data_dir / "queue" / "queue.db"
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def queued_contents(server: Server) -> list[bytes]:
    with _connect(server) as conn:
        return [bytes(row[0]) for row in conn.execute("SELECT data FROM contents")]


def queue_rows(server: Server) -> list[tuple[str, str, bytes, str, str]]:
    """(qid, envelope JSON, content, recipient, state) of every queued recipient."""
    db = _connect(server)
    try:
        return [
            (qid, env, bytes(data), f"{local}@{domain}", state)
            for qid, env, data, local, domain, state in db.execute(
                "SELECT m.qid, m.envelope, c.data, r.local, r.domain, r.state FROM messages m"
                " JOIN contents c ON c.qid = m.qid JOIN recipients r ON r.qid = m.qid"
                " ORDER BY m.qid, r.idx"
            )
        ]
    finally:
        db.close()
