"""Retries on an injected clock: the real SQLite store, the real runner, intake, bouncer,
local delivery into a temp Maildir, and the remote transport toward a loopback port where
nothing listens. Time moves because the test says so; nothing sleeps."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from pathlib import Path

from posthorn.address import Address
from posthorn.config import DnsConfig, LocalConfig, SmtpClientConfig
from posthorn.delivery.local import LocalDelivery
from posthorn.delivery.remote import RemoteDelivery
from posthorn.dns import MxResolver, make_resolver
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.queue import schedule
from posthorn.queue.bouncer import Bouncer
from posthorn.queue.model import RcptState
from posthorn.queue.runner import Runner
from posthorn.queue.sqlite import SqliteStore
from posthorn.routing.nexthop import TransportTable
from posthorn.routing.router import Mailbox, Remote, Router
from support.server import free_port

MINUTE, HOUR = 60.0, 3600.0
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def _scenario(tmp: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp / "queue.db")
    await store.open()
    policy = schedule.policy_from("fast", warn_after=4 * HOUR)
    router = Router(LocalConfig(domains=("local.test",)))
    remote = RemoteDelivery(
        SmtpClientConfig(connect_timeout=2.0, connection_reuse_time=0.0),
        MxResolver(make_resolver(DnsConfig(nameservers=("127.0.0.1:9",), timeout=1.0))),
        TransportTable({"far.test": f"smtp:[127.0.0.1]:{free_port()}"}),  # nobody listens
        hostname="local.test",
    )
    intake = Intake(store, hostname="local.test", postmaster_domain="local.test", clock=clock)
    local = LocalDelivery(str(tmp / "mail" / "{user}"), str(tmp), "local.test")
    runner = Runner(
        store,
        router,
        {Mailbox: local, Remote: remote},
        policy,
        owner="test",
        bouncer=Bouncer(intake, "local.test", policy),
        clock=clock,
    )
    envelope = Envelope(Address("alice", "local.test"), (Recipient(Address("bob", "far.test")),))
    reply = await intake.submit(envelope, b"Subject: later\r\n\r\nbody\r\n")
    qid = reply.lines[0].rpartition(" ")[2]

    async def state() -> tuple[RcptState, int, float, bool]:
        message = await store.get(qid)
        assert message is not None
        (r,) = message.recipients
        return r.state, r.attempts, r.next_attempt, r.warned

    # First attempt: connection refused -> deferred; retry after the first fast delay.
    assert await runner.run_once() == 1
    assert await state() == (RcptState.PENDING, 1, T0 + 1 * MINUTE, False)
    clock.now = T0 + 30
    assert await runner.run_once() == 0  # not due yet
    clock.now = T0 + 61
    assert await runner.run_once() == 1
    assert await state() == (RcptState.PENDING, 2, T0 + 61 + 5 * MINUTE, False)
    # Past the warning time: one delay DSN (Action: delayed), and only one.
    clock.now = T0 + 4 * HOUR + 1
    assert await runner.run_once() == 1
    _, attempts, due, warned = await state()
    assert (attempts, warned) == (3, True)
    assert due == clock.now + 15 * MINUTE
    await runner.run_once()  # delivers the DSN into alice's Maildir
    (delayed,) = list((tmp / "mail" / "alice" / "new").iterdir())
    report = email.message_from_bytes(delayed.read_bytes(), policy=email.policy.default)
    per_rcpt = list(report.iter_parts())[1].get_payload()[1]
    assert per_rcpt["Action"] == "delayed"
    assert per_rcpt["Status"] == "4.4.1"
    assert "Will-Retry-Until" in per_rcpt
    clock.now = due + 1
    await runner.run_once()
    assert len(list((tmp / "mail" / "alice" / "new").iterdir())) == 1
    # Past the give-up time (2 days for the fast profile): failed, and a bounce.
    clock.now = T0 + 2 * 86400 + 1
    await store.reschedule(clock.now, qid=qid)
    assert await runner.run_once() == 1
    assert await store.get(qid) is None
    await runner.run_once()
    reports = sorted((tmp / "mail" / "alice" / "new").iterdir())
    assert len(reports) == 2
    texts = [p.read_bytes() for p in reports]
    (failed,) = [t for t in texts if b"Action: failed" in t]
    assert b"Status: 5.4.7" in failed
    # The header may be folded after its name (RFC 5322 section 2.2.3), depending on length.
    assert re.search(rb"Diagnostic-Code:\s+smtp; 451 4\.4\.1 connect to ", failed)
    await remote.close()
    await store.close()


def test_retry_schedule_delay_warning_and_expiry_on_an_injected_clock(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


def test_explicit_retry_lists_and_profiles() -> None:
    fast = schedule.PROFILES["fast"]
    assert [schedule.next_attempt(fast, n, 0.0) for n in (1, 2, 3)] == [60.0, 300.0, 900.0]
    rfc = schedule.PROFILES["rfc1123"]
    assert schedule.next_attempt(rfc, 1, 100.0) == 100.0 + 30 * MINUTE
    assert rfc.give_up == 5 * 86400
    mine = schedule.policy_from("rfc1123", (10.0, 20.0), give_up=3600.0, warn_after=0.0)
    assert [schedule.next_attempt(mine, n, 0.0) for n in (1, 2, 3, 9)] == [10, 20, 20, 20]
    assert schedule.is_expired(mine, 0.0, 3600.0)
    assert not schedule.needs_warning(mine, 0.0, 10**9, warned=False)
    assert schedule.needs_warning(rfc, 0.0, 4 * HOUR, warned=False)
    assert not schedule.needs_warning(rfc, 0.0, 4 * HOUR, warned=True)
