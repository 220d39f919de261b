"""The schema of the PostgreSQL queue store and its migrations.

Owns: the tables (the same as the SQLite store's: messages, contents, recipients,
schema_version), the steps from each schema version to the next, and migrating a database
to this version of Posthorn in one transaction under an advisory lock, so that several
nodes starting at once do not race. Does not own any statement on queue data
(`postgres_rows.py`).

Raises `psycopg.Error`, and `StoreError` for a schema newer than this code.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from posthorn.queue.store import StoreError

__all__ = ["SCHEMA_VERSION", "migrate"]

# _MIGRATIONS[n] takes the schema from version n to n + 1; version 0 is an empty database.
_MIGRATIONS = [
    """
    CREATE TABLE messages (
        qid text PRIMARY KEY,
        envelope text NOT NULL,
        arrival double precision NOT NULL,
        size bigint NOT NULL,
        hold boolean NOT NULL DEFAULT false,
        lease_owner text NOT NULL DEFAULT '',
        lease_until double precision NOT NULL DEFAULT 0
    );
    CREATE TABLE contents (
        qid text PRIMARY KEY REFERENCES messages ON DELETE CASCADE,
        data bytea NOT NULL
    );
    -- Stored out of line and uncompressed: mail rarely compresses well enough to pay
    -- for compressing it on the accept path.
    ALTER TABLE contents ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE recipients (
        qid text NOT NULL REFERENCES messages ON DELETE CASCADE,
        idx integer NOT NULL,
        local text NOT NULL,
        domain text NOT NULL,
        domain_key text NOT NULL,
        notify text,
        orcpt text,
        state text NOT NULL DEFAULT 'pending',
        attempts integer NOT NULL DEFAULT 0,
        last_reply text NOT NULL DEFAULT '',
        relay text NOT NULL DEFAULT '',
        next_attempt double precision NOT NULL DEFAULT 0,
        warned boolean NOT NULL DEFAULT false,
        PRIMARY KEY (qid, idx)
    );
    CREATE INDEX recipients_due ON recipients (next_attempt) WHERE state = 'pending';
    CREATE INDEX recipients_domain ON recipients (domain_key) WHERE state = 'pending';
    CREATE INDEX messages_leased ON messages (lease_owner) WHERE lease_owner <> '';
    """,
    # 1 -> 2: recipients.route holds the fixed route (file, pipe, refused) that alias
    # expansion gave a recipient (as in the SQLite store); NULL: routed at delivery time.
    "ALTER TABLE recipients ADD COLUMN route text",
]
SCHEMA_VERSION = len(_MIGRATIONS)
_MIGRATION_LOCK = 0x706F7374686F726E  # "posthorn": serialises nodes migrating at once


async def migrate(conn: AsyncConnection[tuple[Any, ...]]) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before.

    PostgreSQL's DDL is transactional, so all steps commit together or not at all.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        found = 0 if row is None else int(row[0])
        if found > SCHEMA_VERSION:
            raise StoreError(f"queue schema {found} is newer than this Posthorn")
        for step in _MIGRATIONS[found:]:
            await conn.execute(step)
        if row is None:
            await conn.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
        elif found < SCHEMA_VERSION:
            await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    return found
