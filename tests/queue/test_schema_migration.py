"""Queue schema 1 -> 2 -> 3: recipients.route, then the contents table's segment
columns, added in place; queued mail kept."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue import sqlite_schema
from posthorn.queue.model import NewMessage
from posthorn.queue.sqlite import SqliteStore
from posthorn.routing.routes import File, Pipe, Refused
from posthorn.smtp.reply import Reply

_V3_CONTENTS = """CREATE TABLE IF NOT EXISTS contents (
    qid TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    segment TEXT,
    seg_offset INTEGER,
    seg_length INTEGER
);"""
assert _V3_CONTENTS in sqlite_schema._SCHEMA
V1 = sqlite_schema._SCHEMA.replace("    route TEXT,\n", "").replace(
    _V3_CONTENTS, "CREATE TABLE IF NOT EXISTS contents (qid TEXT PRIMARY KEY, data BLOB NOT NULL);"
)


def test_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1)
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO messages (qid, envelope, arrival, size) VALUES ('Q1', ?, 5, 3)",
                 ('{"sender": ["a", "b.test"], "body": null, "smtputf8": false, "ret": null,'
                  ' "envid": null, "client_address": "", "client_name": "", "helo": "",'
                  ' "protocol": "ESMTP", "auth_user": null}',))  # fmt: skip
    conn.execute("INSERT INTO contents VALUES ('Q1', x'616263')")
    conn.execute(
        "INSERT INTO recipients (qid, idx, local, domain, domain_key) VALUES"
        " ('Q1', 0, 'bob', 'mx.test', 'mx.test')"
    )
    conn.close()

    async def run() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            (old,) = await store.list()
            assert old.recipients[0].recipient == Recipient(Address("bob", "mx.test"))
            assert await store.content("Q1") == b"abc"
            routes = (
                File("/var/mail/archive", "nobody"),
                Pipe("/usr/bin/prog 'a b'", "sam"),
                Refused(Reply(554, "5.4.6", ("loop",))),
            )
            rcpts = tuple(Recipient(Address("x", "mx.test"), route=r) for r in routes)
            env = Envelope(Address("a", "b.test"), rcpts, arrival=6.0)
            await store.commit(NewMessage("Q2", env, b"data"))
            new = await store.get("Q2")
            assert new is not None
            assert tuple(r.recipient.route for r in new.recipients) == routes
        finally:
            await store.close()

    asyncio.run(run())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (3,)
    conn.close()
