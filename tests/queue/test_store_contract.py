"""The QueueStore contract (src/posthorn/queue/store.py), run against every store
(tests/queue/conftest.py: the embedded SQLite store and the shared PostgreSQL store, a
fresh database each time): commits, claims, records, scheduling and operator actions.
Leases are in test_store_leases.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest

from posthorn.queue.model import NewMessage, RcptState, RecipientUpdate
from posthorn.queue.store import QueueIdTaken, QueueStore, StoreError
from posthorn.routing.routes import File, Pipe, Refused
from posthorn.smtp.reply import Reply
from support.stores import T0, Backend, deferred, delivered, message, run

# -- commit, get, list, content ----------------------------------------------------------


def test_commit_keeps_envelope_recipients_and_content_exactly(backend: Backend) -> None:
    content = b"Subject: caf\xc3\xa9\r\n\r\n" + os.urandom(300_000) + b"\r\n"
    new = message("bob@example.net", "j\u00fcrgen@b\u00fccher.example", content=content)

    async def scenario(store: QueueStore, other: QueueStore) -> None:
        await store.commit(new)
        # Durable and visible to another connection (another node) once commit returns.
        got = await other.get(new.qid)
        assert got is not None
        assert got.envelope == new.envelope
        assert got.envelope.arrival == T0
        assert got.size == len(content)
        assert [r.recipient for r in got.recipients] == list(new.envelope.recipients)
        assert all(r.state is RcptState.PENDING and r.attempts == 0 for r in got.recipients)
        assert await other.content(new.qid) == content
        assert [m.qid for m in await other.list()] == [new.qid]
        assert await other.get("0" * 16) is None
        assert await other.content("0" * 16) is None

    run(backend, scenario, 1)


def test_fixed_routes_from_alias_expansion_are_kept(backend: Backend) -> None:
    routes = [
        None,
        File("/var/mail/archive", "nobody"),
        Pipe("/usr/bin/procmail -a list", "nobody"),
        Refused(Reply(554, "5.4.6", ("forwarding loop",))),
    ]
    base = message(*(f"r{i}@example.net" for i in range(len(routes))))
    recipients = tuple(
        dataclasses.replace(r, route=route)
        for r, route in zip(base.envelope.recipients, routes, strict=True)
    )
    new = dataclasses.replace(
        base, envelope=dataclasses.replace(base.envelope, recipients=recipients)
    )

    async def scenario(store: QueueStore) -> None:
        await store.commit(new)
        got = await store.get(new.qid)
        assert got is not None
        assert [r.recipient.route for r in got.recipients] == routes
        (claimed,) = await store.claim(T0, 10, 60, "a")
        assert [r.recipient for r in claimed.recipients] == list(recipients)

    run(backend, scenario)


def test_concurrent_commits_all_land(backend: Backend) -> None:
    news = [message(f"u{i}@example.net") for i in range(200)]

    async def scenario(store: QueueStore) -> None:
        await asyncio.gather(*(store.commit(m) for m in news))
        assert sorted(m.qid for m in await store.list()) == sorted(m.qid for m in news)

    run(backend, scenario)


def test_a_duplicate_queue_id_fails_alone(backend: Backend) -> None:
    first = message()
    twin = NewMessage(first.qid, first.envelope, b"other\r\n")
    others = [message(f"u{i}@example.net") for i in range(20)]

    async def scenario(store: QueueStore) -> None:
        await store.commit(first)
        results = await asyncio.gather(
            store.commit(twin), *(store.commit(m) for m in others), return_exceptions=True
        )
        assert isinstance(results[0], QueueIdTaken)  # intake tries again with new ids
        assert results[1:] == [None] * len(others)
        assert len(await store.list()) == 1 + len(others)
        assert await store.content(first.qid) == first.content

    run(backend, scenario)


# -- claim and record ------------------------------------------------------------------------


def test_claim_takes_due_unheld_unleased_messages(backend: Backend) -> None:
    now, held, later = message(), message(), message()
    held = NewMessage(held.qid, held.envelope, held.content, hold=True)

    async def scenario(store: QueueStore) -> None:
        for m in (now, held, later):
            await store.commit(m)
        claimed = await store.claim(T0, 10, 60, "a")
        assert sorted(m.qid for m in claimed) == sorted([now.qid, later.qid])  # not held
        assert {(m.lease_owner, m.lease_until) for m in claimed} == {("a", T0 + 60)}
        await store.record(later.qid, [deferred(0, T0 + 500)], "a")
        assert await store.claim(T0 + 30, 10, 60, "b") == []  # leased, or not due yet
        # After the lease expires, another owner takes it over.
        (again,) = await store.claim(T0 + 61, 10, 1000, "b")
        assert (again.qid, again.lease_owner) == (now.qid, "b")
        (last,) = await store.claim(T0 + 500, 10, 60, "b")
        assert last.qid == later.qid
        assert last.recipients[0].attempts == 1
        listed = {m.qid: m for m in await store.list()}
        assert listed[held.qid].hold

    run(backend, scenario)


def test_claim_respects_the_limit_oldest_first(backend: Backend) -> None:
    news = [message(arrival=T0 + i) for i in range(5)]

    async def scenario(store: QueueStore) -> None:
        for m in reversed(news):
            await store.commit(m)
        claimed = await store.claim(T0 + 10, 2, 60, "a")
        assert [m.qid for m in claimed] == [news[0].qid, news[1].qid]

    run(backend, scenario)


def test_two_nodes_claiming_at_once_never_share_a_message(backend: Backend) -> None:
    news = [message(f"u{i}@example.net") for i in range(120)]

    async def scenario(a: QueueStore, b: QueueStore) -> None:
        for m in news:
            await a.commit(m)

        async def drain(store: QueueStore, owner: str) -> list[str]:
            got: list[str] = []
            while claimed := await store.claim(T0 + 1, 7, 60, owner):
                got += [m.qid for m in claimed]
            return got

        got_a, got_b = await asyncio.gather(drain(a, "a"), drain(b, "b"))
        assert not set(got_a) & set(got_b)
        assert sorted(got_a + got_b) == sorted(m.qid for m in news)

    run(backend, scenario, 1)


def test_record_updates_deletes_and_adds_bounces(backend: Backend) -> None:
    new = message("a@example.net", "b@example.net")
    bounce = message("alice@example.org")

    async def scenario(store: QueueStore) -> None:
        await store.commit(new)
        (m,) = await store.claim(T0, 10, 60, "a")
        failed = RecipientUpdate(1, RcptState.FAILED, "550 5.1.1 no such user", "mx", 0.0)
        await store.record(m.qid, [deferred(0, T0 + 300), failed], "a", [bounce])
        got = await store.get(m.qid)
        assert got is not None
        assert got.lease_owner == ""
        first, second = got.recipients
        assert (first.state, first.attempts, first.next_attempt) == (
            RcptState.PENDING,
            1,
            T0 + 300,
        )
        assert (second.state, second.last_reply) == (RcptState.FAILED, "550 5.1.1 no such user")
        assert await store.content(bounce.qid) == bounce.content
        assert await store.next_due() == 0.0  # the bounce is due at once
        claimed = await store.claim(T0 + 301, 10, 60, "a")
        assert {m.qid for m in claimed} == {new.qid, bounce.qid}

    run(backend, scenario)


def test_a_message_with_nothing_pending_leaves_the_queue(backend: Backend) -> None:
    async def scenario(store: QueueStore) -> None:
        await store.commit(message())
        (m,) = await store.claim(T0, 10, 60, "a")
        await store.record(m.qid, [delivered(0)], "a")
        assert await store.get(m.qid) is None
        assert await store.content(m.qid) is None
        assert await store.list() == []
        assert await store.next_due() is None

    run(backend, scenario)


# -- scheduling and operator actions -------------------------------------------------------


def test_next_due_hold_delete_reschedule(backend: Backend) -> None:
    one = message("a@one.example", "b@two.example")
    two = message("c@two.example")

    async def scenario(store: QueueStore) -> None:
        assert await store.next_due() is None
        await store.commit(one)
        await store.commit(two)
        for m in await store.claim(T0, 10, 60, "a"):
            updates = [deferred(r.index, T0 + 1000 + r.index) for r in m.recipients]
            await store.record(m.qid, updates, "a")
        assert await store.next_due() == T0 + 1000
        assert await store.set_hold(one.qid, True)
        assert await store.next_due() == T0 + 1000  # two's recipient
        assert await store.reschedule(T0 + 5, domain="TWO.example") == 2
        assert await store.next_due() == T0 + 5  # two's; one's is held
        assert await store.set_hold(one.qid, False)
        assert await store.reschedule(T0 + 7, qid=one.qid) == 2
        assert await store.claim(T0 + 6, 10, 60, "a") != []
        assert await store.reschedule(T0 + 9) == 3
        assert not await store.set_hold("F" * 16, True)
        assert await store.delete(one.qid)
        assert not await store.delete(one.qid)
        assert await store.content(one.qid) is None
        assert [m.qid for m in await store.list()] == [two.qid]

    run(backend, scenario)


def test_a_newer_schema_is_refused(backend: Backend, request: pytest.FixtureRequest) -> None:
    async def setup(store: QueueStore) -> None:
        await store.commit(message())

    run(backend, setup)
    if backend.name == "sqlite":
        import sqlite3

        path = request.getfixturevalue("tmp_path") / "queue.db"
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE schema_version SET version = 999")
    else:
        import psycopg

        dsn = request.getfixturevalue("pg_dsn")
        with psycopg.connect(dsn) as conn:
            conn.execute("UPDATE schema_version SET version = 999")

    async def reopen() -> None:
        store = backend.make()
        with pytest.raises(StoreError, match="newer"):
            await store.open()
        await store.close()

    asyncio.run(reopen())
