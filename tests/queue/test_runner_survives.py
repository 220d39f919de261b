"""A queue runner that survives bugs: a transport that raises, a router that raises, a
bouncer that raises. The real runner loop runs (not `run_once`) over the real SQLite
store, with local delivery into a temp Maildir; the failing parts are injected, because
a bug cannot be produced on demand. Each time the message stays queued, deferred on the
retry schedule (not retried in a tight loop), with a diagnostic in the store, in
`posthorn queue list` and in the log, and the runner goes on delivering other mail."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from posthorn.address import Address
from posthorn.config import LocalConfig
from posthorn.delivery.local import LocalDelivery
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.outcome import Outcome
from posthorn.queue import schedule
from posthorn.queue.model import NewMessage, QueuedMessage, RcptState, RecipientStatus
from posthorn.queue.runner import Runner
from posthorn.queue.sqlite import SqliteStore
from posthorn.queue.store import StoreError
from posthorn.routing.router import Mailbox, Remote, Route, Router
from support.server import env, posthorn_cmd

T0 = 1_700_000_000.0
T = TypeVar("T")


class _Exploding:
    """A transport with a bug."""

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        raise RuntimeError("transport bug: this text stays in the log")


class _RouterWithABug(Router):
    def route(self, address: Address) -> Route | None:
        if address.local == "crash":
            raise KeyError("router bug")
        return super().route(address)


def _bouncer_with_a_bug(message: QueuedMessage, *args: object) -> list[NewMessage]:
    if message.envelope.recipients[0].address.domain == "far.test":
        raise ZeroDivisionError("bouncer bug")
    return []


def _count_claims(store: SqliteStore) -> list[int]:
    """Count the messages the runner claims from now on: [count], updated in place."""
    claims = [0]
    real_claim = store.claim

    async def counting_claim(*args: object, **kwargs: object) -> list[QueuedMessage]:
        found = await real_claim(*args, **kwargs)  # type: ignore[arg-type]
        claims[0] += len(found)
        return found

    store.claim = counting_claim  # type: ignore[method-assign]
    return claims


async def _scenario(tmp: Path, bug: str) -> tuple[QueuedMessage, int]:
    store = SqliteStore(tmp / "queue" / "queue.db")
    await store.open()
    local = LocalConfig(domains=("local.test",))
    intake = Intake(store, hostname="local.test", postmaster_domain="local.test", clock=lambda: T0)
    runner = Runner(
        store,
        _RouterWithABug(local),
        {Mailbox: LocalDelivery(str(tmp / "mail" / "{user}"), str(tmp), "local.test"),
         Remote: _Exploding()},
        schedule.policy_from("fast"),
        owner="test",
        clock=lambda: T0,
        **({"bouncer": _bouncer_with_a_bug} if bug == "bouncer" else {}),  # type: ignore[arg-type]
    )  # fmt: skip
    task = asyncio.create_task(runner.run())
    claims = _count_claims(store)

    async def submit(rcpt: str) -> str:
        envelope = Envelope(Address("alice", "local.test"), (Recipient(Address.parse(rcpt)),))
        reply = await intake.submit(envelope, b"Subject: t\r\n\r\nbody\r\n")
        runner.wake()
        return reply.lines[0].rpartition(" ")[2]

    bad = {"transport": "bob@far.test", "router": "crash@local.test", "bouncer": "x@far.test"}
    qid = await submit(bad[bug])
    for user in ("carol", "dave"):
        await submit(f"{user}@local.test")

        async def delivered(user: str = user) -> bool:
            return any((tmp / "mail" / user / "new").glob("*"))

        await _until(delivered)

    async def deferred() -> QueuedMessage | None:
        message = await store.get(qid)
        assert message is not None
        return message if message.recipients[0].attempts else None

    found = await _until(deferred)
    assert not task.done(), "the runner stopped"
    await runner.stop()
    task.cancel()
    await store.close()
    return found, claims[0]


async def _until(check: Callable[[], Awaitable[T | bool | None]]) -> T:
    """Poll `check` until it returns something truthy, for ten seconds at most."""
    for _ in range(1000):
        if found := await check():
            return found  # type: ignore[return-value]
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {check}")


@pytest.mark.parametrize(
    ("bug", "diagnostic", "logged"),
    [
        ("transport", "Delivery agent failed (RuntimeError)", "transport _Exploding raised"),
        ("router", "Routing failed (KeyError)", "routing <crash@local.test> raised"),
        ("bouncer", "Delivery run failed (ZeroDivisionError)", "delivery run failed"),
    ],
)
def test_a_bug_defers_the_message_and_the_runner_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bug: str, diagnostic: str, logged: str
) -> None:
    caplog.set_level(logging.INFO, "posthorn")
    message, claims = asyncio.run(_scenario(tmp_path, bug))
    (rcpt,) = message.recipients
    assert rcpt.state is RcptState.PENDING
    assert rcpt.last_reply == f"451 4.3.0 {diagnostic}; see the mail log"
    assert rcpt.next_attempt == T0 + 60  # the fast profile's first retry, not "now"
    # Three messages, each claimed once: the broken one was not retried in a loop.
    assert claims == 3
    # Mail to others went on: carol's and dave's messages were delivered after the bug.
    assert [len(list((tmp_path / "mail" / u / "new").iterdir())) for u in ("carol", "dave")] == [
        1,
        1,
    ]
    (record,) = [r for r in caplog.records if logged in r.getMessage()]
    assert record.exc_info is not None  # the traceback is in the log
    listed = subprocess.run(
        posthorn_cmd("queue", "list", "--data-dir", str(tmp_path)),
        capture_output=True,
        env=env(),
        timeout=60,
        check=True,
    ).stdout.decode()
    assert message.qid in listed
    assert diagnostic in listed
    assert "bug" not in listed.lower()  # the exception's text stays out of the queue


def test_a_queue_database_error_releases_the_message_for_the_next_run(tmp_path: Path) -> None:
    """A failing store read is the database's trouble, not the message's: the message is
    not put on the retry schedule (a 30-minute wait after PostgreSQL comes back) but
    released, and delivered by the next run once the store answers again."""

    async def run() -> list[Path]:
        store = SqliteStore(tmp_path / "queue" / "queue.db")
        await store.open()
        local = LocalConfig(domains=("local.test",))
        intake = Intake(store, hostname="local.test", postmaster_domain="local.test")
        mailbox = LocalDelivery(str(tmp_path / "mail" / "{user}"), str(tmp_path), "local.test")
        runner = Runner(store, Router(local), {Mailbox: mailbox}, schedule.policy_from("rfc1123"),
                        owner="test")  # fmt: skip
        real_content = store.content
        failures = [StoreError("queue database: server closed the connection unexpectedly")]

        async def flaky_content(qid: str) -> bytes | None:
            if failures:
                raise failures.pop()
            return await real_content(qid)

        store.content = flaky_content  # type: ignore[method-assign]
        task = asyncio.create_task(runner.run())
        envelope = Envelope(
            Address("alice", "local.test"), (Recipient(Address("bob", "local.test")),)
        )
        await intake.submit(envelope, b"Subject: t\r\n\r\nbody\r\n")
        runner.wake()

        async def delivered() -> list[Path]:
            return list((tmp_path / "mail" / "bob" / "new").glob("*"))

        found = await _until(delivered)
        assert not failures, "the store error happened"
        await runner.stop()
        task.cancel()
        await store.close()
        return found

    assert len(asyncio.run(run())) == 1


def test_unreadable_content_defers_the_message_instead_of_a_tight_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged segment file is the message's trouble, not the database's: releasing the
    message (as for a store error) would make it due again at once, and it would fail
    again at once. It goes on the retry schedule; other mail goes on."""
    caplog.set_level(logging.INFO, "posthorn")
    db = tmp_path / "queue" / "queue.db"

    async def run() -> tuple[QueuedMessage, int]:
        store = SqliteStore(db)
        await store.open()
        local = LocalConfig(domains=("local.test",))
        intake = Intake(
            store, hostname="local.test", postmaster_domain="local.test", clock=lambda: T0
        )
        mailbox = LocalDelivery(str(tmp_path / "mail" / "{user}"), str(tmp_path), "local.test")
        runner = Runner(
            store, Router(local), {Mailbox: mailbox}, schedule.policy_from("fast"),
            owner="test", clock=lambda: T0,
        )  # fmt: skip

        async def submit(rcpt: str, body: bytes) -> str:
            envelope = Envelope(Address("alice", "local.test"), (Recipient(Address.parse(rcpt)),))
            reply = await intake.submit(envelope, b"Subject: t\r\n\r\n" + body + b"\r\n")
            return reply.lines[0].rpartition(" ")[2]

        qid = await submit("bob@local.test", b"x" * 40_000)  # over 16 KiB: in a segment
        (segment,) = (db.parent / "segments").iterdir()
        os.truncate(segment, 100)
        claims = _count_claims(store)
        task = asyncio.create_task(runner.run())
        await submit("carol@local.test", b"small")
        runner.wake()

        async def delivered() -> bool:
            return any((tmp_path / "mail" / "carol" / "new").glob("*"))

        async def deferred() -> QueuedMessage | None:
            message = await store.get(qid)
            assert message is not None
            return message if message.recipients[0].attempts else None

        await _until(delivered)
        found = await _until(deferred)
        await asyncio.sleep(0.3)  # a tight loop would claim it again and again meanwhile
        await runner.stop()
        task.cancel()
        await store.close()
        return found, claims[0]

    message, claims = asyncio.run(run())
    (rcpt,) = message.recipients
    assert rcpt.state is RcptState.PENDING
    assert rcpt.next_attempt == T0 + 60  # the fast profile's first retry, not "now"
    assert rcpt.last_reply == "451 4.3.0 Delivery run failed (ContentUnreadable); see the mail log"
    assert claims == 2  # bob's once, carol's once
    assert any("cannot read the queued content" in r.getMessage() for r in caplog.records)
