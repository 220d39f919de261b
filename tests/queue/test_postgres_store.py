"""What only the PostgreSQL store does, on a real server: group commit (many sessions'
messages in one transaction), nodes migrating the schema at once, other nodes woken by
NOTIFY, and a connection that PostgreSQL dropped being replaced."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue import postgres_schema
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.postgres import PostgresStore, init_schema
from posthorn.queue.store import StoreError
from support.postgres import PgServer


def message(n: int = 0, hold: bool = False) -> NewMessage:
    envelope = Envelope(
        Address("alice", "example.org"), (Recipient(Address(f"u{n}", "example.net")),)
    )
    return NewMessage(new_queue_id(), envelope, f"Subject: {n}\r\n\r\nx\r\n".encode(), hold)


def test_concurrent_commits_share_transactions(pg_dsn: str) -> None:
    async def scenario() -> None:
        store = PostgresStore(pg_dsn)
        await store.open()
        try:
            await asyncio.gather(*(store.commit(message(i)) for i in range(300)))
        finally:
            await store.close()

    asyncio.run(scenario())
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT xmin::text) FROM messages").fetchone()
    assert row is not None
    messages, transactions = row
    assert messages == 300
    # Group commit: the commits that arrived while one transaction was in flight went
    # into the next one together.
    assert transactions < messages / 5, f"{transactions} transactions for {messages} messages"


def test_nodes_starting_together_migrate_once(pg_dsn: str) -> None:
    async def scenario() -> None:
        stores = [PostgresStore(pg_dsn, node=f"n{i}") for i in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(scenario())
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(postgres_schema.SCHEMA_VERSION,)]
    assert asyncio.run(init_schema(pg_dsn)) == (postgres_schema.SCHEMA_VERSION,) * 2


def test_other_nodes_are_woken_but_not_the_sender(pg_dsn: str) -> None:
    async def scenario() -> None:
        woken = {"a": asyncio.Event(), "b": asyncio.Event()}
        a = PostgresStore(pg_dsn, node="a")
        b = PostgresStore(pg_dsn, node="b")
        a.watch(woken["a"].set)
        b.watch(woken["b"].set)
        await a.open()
        await b.open()
        try:
            # Each listener wakes once when it starts (it may have missed something).
            await asyncio.wait_for(woken["a"].wait(), 10)
            await asyncio.wait_for(woken["b"].wait(), 10)
            woken["a"].clear()
            woken["b"].clear()
            await a.commit(message(hold=True))  # nothing due: nobody to wake
            await a.commit(message())
            await asyncio.wait_for(woken["b"].wait(), 10)
            assert not woken["a"].is_set()
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_a_dropped_connection_fails_one_batch_then_reconnects(
    pg_server: PgServer, pg_dsn: str
) -> None:
    database = pg_dsn.rpartition("/")[2]

    async def scenario() -> None:
        store = PostgresStore(pg_dsn, node="a")
        await store.open()
        try:
            await store.commit(message(1))
            # What a PostgreSQL restart or failover does to every open connection.
            pg_server.psql(
                "postgres",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{database}'",
            )
            with pytest.raises(StoreError):
                await store.commit(message(2))
            await store.commit(message(3))
            with pytest.raises(StoreError):
                await store.list()  # the reader connection was dropped too
            assert len(await store.list()) == 2
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_unreachable_database_is_a_store_error() -> None:
    async def scenario() -> None:
        store = PostgresStore("postgresql://nobody@127.0.0.1:9/none", timeout=2)
        with pytest.raises(StoreError, match="cannot connect"):
            await store.open()

    asyncio.run(scenario())


def test_a_version_1_database_is_migrated_in_place(pg_dsn: str) -> None:
    """A queue created before the route column (schema 1) gains it, data kept."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute(postgres_schema._MIGRATIONS[0])
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute(
            "INSERT INTO messages (qid, envelope, arrival, size) VALUES"
            " ('0000000000000001', %s, 1.0, 3)",
            ('{"sender": null}',),
        )
        conn.execute("INSERT INTO contents VALUES ('0000000000000001', 'abc')")
        conn.execute(
            "INSERT INTO recipients (qid, idx, local, domain, domain_key)"
            " VALUES ('0000000000000001', 0, 'bob', 'example.net', 'example.net')"
        )
    assert asyncio.run(init_schema(pg_dsn)) == (1, postgres_schema.SCHEMA_VERSION)

    async def read() -> None:
        store = PostgresStore(pg_dsn)
        await store.open()
        try:
            (old,) = await store.list()
            assert old.envelope.sender is None
            assert old.recipients[0].recipient.route is None
            assert await store.content(old.qid) == b"abc"
        finally:
            await store.close()

    asyncio.run(read())
