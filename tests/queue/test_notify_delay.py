"""RFC 3461 section 4.1: a recipient whose NOTIFY leaves out DELAY gets no delay warning;
one without NOTIFY (the default) does. The real runner, SQLite store, intake, bouncer
and a Maildir; the remote peer is a loopback port where nobody listens; time moves on an
injected clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from posthorn.address import Address
from posthorn.config import LocalConfig
from posthorn.delivery.local import LocalDelivery
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.queue import schedule
from posthorn.queue.bouncer import Bouncer
from posthorn.queue.runner import Runner
from posthorn.queue.sqlite import SqliteStore
from posthorn.routing.router import Mailbox, Remote, Router
from support.remote import remote
from support.server import free_port

HOUR = 3600.0
T0 = 1_700_000_000.0


async def _warnings(tmp: Path, notify: frozenset[str] | None) -> list[Path]:
    now = [T0]
    store = SqliteStore(tmp / "queue.db")
    await store.open()
    policy = schedule.policy_from("fast", warn_after=4 * HOUR)
    intake = Intake(
        store, hostname="local.test", postmaster_domain="local.test", clock=lambda: now[0]
    )
    transport = remote({"far.test": f"smtp:[127.0.0.1]:{free_port()}"})  # nobody listens
    runner = Runner(
        store,
        Router(LocalConfig(domains=("local.test",))),
        {Mailbox: LocalDelivery(str(tmp / "mail" / "{user}"), str(tmp), "local.test"),
         Remote: transport},
        policy,
        owner="test",
        bouncer=Bouncer(intake, "local.test", policy),
        clock=lambda: now[0],
    )  # fmt: skip
    rcpt = Recipient(Address("bob", "far.test"), notify=notify)
    await intake.submit(Envelope(Address("alice", "local.test"), (rcpt,)), b"Subject: x\r\n\r\n")
    assert await runner.run_once() == 1  # deferred: connection refused
    now[0] = T0 + 4 * HOUR + 1  # past the warning time
    assert await runner.run_once() == 1
    await runner.run_once()  # delivers a DSN, if one was made
    await transport.close()
    await store.close()
    new = tmp / "mail" / "alice" / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


@pytest.mark.parametrize(
    ("notify", "warned"),
    [(None, True), (frozenset({"FAILURE"}), False), (frozenset({"FAILURE", "DELAY"}), True)],
)
def test_delay_warning_follows_notify(
    tmp_path: Path, notify: frozenset[str] | None, warned: bool
) -> None:
    found = asyncio.run(_warnings(tmp_path, notify))
    assert len(found) == (1 if warned else 0)
    if warned:
        assert b"Action: delayed" in found[0].read_bytes()
