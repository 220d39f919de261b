"""`queue/giveup.py` on the real SQLite store with an injected clock and sleep: a message
leased by the runner is waited for while the lease lasts and taken once it is given
back; the failures and the DSN are recorded together; the lease rules of `store.lease`.
Nothing sleeps."""

from __future__ import annotations

import asyncio
from pathlib import Path

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.queue import schedule
from posthorn.queue.bouncer import Bouncer
from posthorn.queue.giveup import Bounced, Busy, give_up
from posthorn.queue.model import RcptState, RecipientUpdate
from posthorn.queue.sqlite import SqliteStore

T0 = 1_700_000_000.0
ALICE = Address("alice", "local.test")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def _setup(tmp: Path, clock: Clock) -> tuple[SqliteStore, Intake, str]:
    store = SqliteStore(tmp / "queue.db")
    await store.open()
    intake = Intake(store, hostname="local.test", postmaster_domain="local.test", clock=clock)
    envelope = Envelope(ALICE, (Recipient(Address("bob", "far.test")),), protocol="local")
    reply = await intake.submit(envelope, b"Subject: hi\r\n\r\nbody\r\n")
    qid = reply.text.rpartition(" ")[2]
    return store, intake, qid


async def _scenario(tmp: Path) -> None:
    clock = Clock()
    store, intake, qid = await _setup(tmp, clock)
    bouncer = Bouncer(intake, "local.test", schedule.PROFILES["rfc1123"])
    (claimed,) = await store.claim(clock(), 10, 600.0, "runner")
    assert claimed.qid == qid
    # Another owner cannot lease it while the runner's lease lasts.
    taken = await store.lease(qid, clock(), 60.0, "someone")
    assert taken is not None
    assert taken.lease_owner == "runner"

    sleeps: list[float] = []
    told: list[Busy] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds
        if len(sleeps) == 3:  # the runner finishes: a deferral, lease given back
            update = RecipientUpdate(0, RcptState.PENDING, "451 4.4.1 refused", "", T0 + 1800)
            await store.record(qid, [update], "runner")

    result = await give_up(
        store, qid, bouncer, owner="op", lease=60.0, clock=clock, wait=10.0,
        sleep=sleep, on_wait=told.append,
    )  # fmt: skip
    assert isinstance(result, Bounced)
    assert told == [Busy(qid, "runner", T0 + 600.0)]  # told once, then quietly polled
    assert sleeps == [0.05, 0.1, 0.2]
    assert result.recipients == ("bob@far.test",)
    assert result.null_sender is False
    assert await store.get(qid) is None  # nothing pending: removed
    (notice,) = result.notices
    dsn = await store.get(notice)
    assert dsn is not None
    assert dsn.envelope.sender is None
    assert [str(r.recipient.address) for r in dsn.recipients] == ["alice@local.test"]
    content = await store.content(notice)
    assert content is not None
    assert b"Status: 5.4.7" in content
    assert b"last attempt: 451 4.4.1 refused" in content
    await store.close()


async def _gives_up_waiting(tmp: Path) -> None:
    clock = Clock()
    store, intake, qid = await _setup(tmp, clock)
    bouncer = Bouncer(intake, "local.test", schedule.PROFILES["rfc1123"])
    await store.claim(clock(), 10, 600.0, "runner")

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    result = await give_up(
        store, qid, bouncer, owner="op", lease=60.0, clock=clock, wait=2.0, sleep=sleep
    )
    assert result == Busy(qid, "runner", T0 + 600.0)
    message = await store.get(qid)
    assert message is not None
    assert message.pending  # untouched
    # An expired lease is no longer a delivery in progress.
    clock.now = T0 + 601.0
    assert isinstance(await give_up(store, qid, bouncer, owner="op", lease=60.0, clock=clock),
                      Bounced)  # fmt: skip
    assert await give_up(store, qid, bouncer, owner="op", lease=60.0, clock=clock) is None
    await store.close()


def test_waits_for_the_runner_then_bounces(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


def test_refuses_after_the_wait_and_takes_an_expired_lease(tmp_path: Path) -> None:
    asyncio.run(_gives_up_waiting(tmp_path))
