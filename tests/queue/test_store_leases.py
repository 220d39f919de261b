"""The QueueStore contract on leases (src/posthorn/queue/store.py), against every store
(tests/queue/conftest.py): a lost lease records nothing, an operator's lease never takes
a message from under another owner, release and renew touch only their owner's."""

from __future__ import annotations

from posthorn.queue.model import NewMessage, RcptState
from posthorn.queue.store import QueueStore
from support.stores import T0, Backend, deferred, delivered, message, run


def test_a_node_that_lost_its_lease_cannot_record(backend: Backend) -> None:
    """Node a stalls past its lease; b claims, delivers and finishes; a comes back."""

    async def scenario(a: QueueStore, b: QueueStore) -> None:
        await a.commit(message("x@example.net", "y@example.net"))
        (mine,) = await a.claim(T0, 10, 60, "a")
        (theirs,) = await b.claim(T0 + 61, 10, 60, "b")
        assert theirs.qid == mine.qid
        await b.record(theirs.qid, [delivered(0), deferred(1, T0 + 900)], "b")
        await a.record(mine.qid, [deferred(0, T0 + 100), deferred(1, T0 + 100)], "a", [message()])
        got = await b.get(mine.qid)
        assert got is not None
        assert [r.state for r in got.recipients] == [RcptState.DELIVERED, RcptState.PENDING]
        assert [r.attempts for r in got.recipients] == [1, 1]
        assert got.recipients[1].next_attempt == T0 + 900
        assert len(await b.list()) == 1  # a's bounce was dropped with its results
        # And once b has finished it, a's late results cannot bring it back.
        (theirs,) = await b.claim(T0 + 901, 10, 60, "b")
        await b.record(theirs.qid, [delivered(1)], "b")
        await a.record(mine.qid, [deferred(1, T0 + 100)], "a")
        assert await a.list() == []

    run(backend, scenario, 1)


def test_lease_takes_one_message_unless_another_owner_holds_it(backend: Backend) -> None:
    held = message()
    held = NewMessage(held.qid, held.envelope, held.content, hold=True)
    busy = message()

    async def scenario(a: QueueStore, b: QueueStore) -> None:
        await a.commit(held)
        await a.commit(busy)
        (claimed,) = await a.claim(T0, 10, 60, "runner")
        assert claimed.qid == busy.qid
        got = await b.lease(held.qid, T0, 30, "admin")  # held or not, due or not
        assert got is not None
        assert (got.lease_owner, got.lease_until, got.hold) == ("admin", T0 + 30, True)
        refused = await b.lease(busy.qid, T0 + 10, 30, "admin")
        assert refused is not None
        assert refused.lease_owner == "runner"  # not from under an unexpired lease
        taken = await b.lease(busy.qid, T0 + 61, 30, "admin")
        assert taken is not None
        assert taken.lease_owner == "admin"
        assert await b.lease("F" * 16, T0, 30, "admin") is None
        # The admin's lease keeps runners away like any other.
        assert await a.claim(T0 + 62, 10, 60, "runner") == []

    run(backend, scenario, 1)


def test_release_and_release_all_touch_only_their_owner(backend: Backend) -> None:
    async def scenario(store: QueueStore) -> None:
        for _ in range(3):
            await store.commit(message())
        mine = await store.claim(T0, 2, 600, "a")
        (theirs,) = await store.claim(T0, 5, 600, "b")
        await store.release(theirs.qid, "a")  # not a's to release
        assert await store.claim(T0, 5, 600, "c") == []
        assert await store.release_all("a") == 2
        again = await store.claim(T0, 5, 600, "c")
        assert sorted(m.qid for m in again) == sorted(m.qid for m in mine)
        await store.release(theirs.qid, "b")
        (last,) = await store.claim(T0, 5, 600, "c")
        assert last.qid == theirs.qid

    run(backend, scenario)


def test_renew_extends_only_the_owners_leases(backend: Backend) -> None:
    async def scenario(store: QueueStore) -> None:
        await store.commit(message())
        await store.commit(message())
        (m1,) = await store.claim(T0, 1, 60, "a")
        (m2,) = await store.claim(T0, 1, 60, "b")
        assert await store.renew([m1.qid, m2.qid], "a", T0 + 500) == 1
        (taken,) = await store.claim(T0 + 61, 5, 1000, "c")
        assert taken.qid == m2.qid  # b's lease ran out; a's was renewed
        assert await store.claim(T0 + 499, 5, 60, "c") == []
        assert [m.qid for m in await store.claim(T0 + 500, 5, 60, "c")] == [m1.qid]

    run(backend, scenario)
