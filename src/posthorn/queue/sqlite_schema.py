"""The schema of the SQLite queue store and its migrations.

Owns: switching a new database to WAL, the tables (messages, contents, recipients,
schema_version; the PostgreSQL store has the same), the steps from each schema version
to the next, and creating or migrating a database file in one transaction, so that
several processes opening the queue at once do not race. Does not own any statement on
queue data (`sqlite_rows.py`).

Raises `sqlite3.DatabaseError`, also for a schema newer than this code.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["SCHEMA_VERSION", "create_schema", "wal"]

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    qid TEXT PRIMARY KEY,
    envelope TEXT NOT NULL,
    arrival REAL NOT NULL,
    size INTEGER NOT NULL,
    hold INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS contents (
    qid TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    segment TEXT,
    seg_offset INTEGER,
    seg_length INTEGER
);
CREATE TABLE IF NOT EXISTS recipients (
    qid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    local TEXT NOT NULL,
    domain TEXT NOT NULL,
    domain_key TEXT NOT NULL,
    notify TEXT,
    orcpt TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_reply TEXT NOT NULL DEFAULT '',
    relay TEXT NOT NULL DEFAULT '',
    next_attempt REAL NOT NULL DEFAULT 0,
    warned INTEGER NOT NULL DEFAULT 0,
    route TEXT,
    PRIMARY KEY (qid, idx)
);
DROP INDEX IF EXISTS recipients_due;
CREATE INDEX IF NOT EXISTS recipients_due_order ON recipients (state, next_attempt, qid);
CREATE INDEX IF NOT EXISTS recipients_domain ON recipients (domain_key, state);
"""
# Made after the migrations: a version 2 contents table gets its columns first.
_SEGMENT_INDEX = (
    "CREATE INDEX IF NOT EXISTS contents_segment ON contents (segment) WHERE segment IS NOT NULL"
)


# Each step takes the schema from version N to N + 1, in place; data is kept.
_MIGRATIONS = {
    # 1 -> 2: recipients.route holds the fixed route (file, pipe, refused) that alias
    # expansion gave a recipient; NULL for an address routed at delivery time.
    1: "ALTER TABLE recipients ADD COLUMN route TEXT",
    # 2 -> 3: a large content lives in a segment file (`segments.py`); its row keeps an
    # empty `data` and names the segment, offset and length. NULL segment: inline.
    2: "ALTER TABLE contents ADD COLUMN segment TEXT;"
    "ALTER TABLE contents ADD COLUMN seg_offset INTEGER;"
    "ALTER TABLE contents ADD COLUMN seg_length INTEGER",
}


def create_schema(conn: sqlite3.Connection) -> None:
    """Create or migrate the schema, in one transaction: several processes (worker
    processes, operator commands) may open the queue at the same moment."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = SCHEMA_VERSION if row is None else int(row[0])
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"queue schema {version} is newer than this Posthorn")
        while version < SCHEMA_VERSION:
            # Each step takes the schema from N to N + 1, data kept; all steps commit
            # together, so a crash leaves the old schema or the new, never a mixture.
            for statement in _MIGRATIONS[version].split(";"):
                conn.execute(statement)
            version += 1
            conn.execute("UPDATE schema_version SET version = ?", (version,))
        conn.execute(_SEGMENT_INDEX)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def wal(conn: sqlite3.Connection, patience: float = 10.0) -> None:
    """Switch to WAL. Several processes opening a new queue at once race for this
    change, and SQLite answers the losers "database is locked" at once rather than
    waiting as busy_timeout does for other statements: so wait here."""
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
