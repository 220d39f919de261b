"""The pure parts of `posthorn explain`: the remote plan from DNS answers as values, the
retry timeline, verdicts and durations. DNS itself is exercised end to end in
tests/integration/test_cli_explain.py."""

from __future__ import annotations

from posthorn.config import SmtpClientConfig
from posthorn.dns import LookupFailed, MxRecord, MxRecords, NoRecords, NoSuchDomain
from posthorn.explain import remote_plan
from posthorn.explain.model import RemotePlan, Verdict, verdict_of, worst
from posthorn.explain.render import duration
from posthorn.explain.timeline import timeline
from posthorn.queue import schedule
from posthorn.routing.nexthop import TransportTable
from posthorn.smtp.reply import Reply

ME = frozenset({"mx2.example.org"})


def _plan(
    records: list[tuple[int, str]],
    addresses: dict[str, remote_plan.AddressAnswer],
    routes: dict[str, str] | None = None,
) -> RemotePlan:
    nexthop, target = remote_plan.target_of(TransportTable(routes or {}), "example.org")
    mx = MxRecords(tuple(MxRecord(p, h) for p, h in records)) if records else NoRecords()
    facts = remote_plan.DnsFacts(mx=mx, addresses=addresses)
    return remote_plan.plan("example.org", nexthop, target, facts, SmtpClientConfig(), ME)


def test_this_host_as_an_mx_tries_only_better_ones() -> None:
    # RFC 5321 section 5.1: a backup MX never hands mail to an equal or worse one.
    plan = _plan(
        [(10, "mx1.example.org"), (20, "mx2.example.org"), (30, "mx3.example.org")],
        {"mx1.example.org": ["192.0.2.1"]},
    )
    assert [h.name for h in plan.hosts] == ["mx1.example.org"]
    assert plan.skipped == ("mx2.example.org", "mx3.example.org")
    assert plan.verdict is Verdict.DELIVERABLE


def test_this_host_as_the_best_mx_is_a_loop() -> None:
    plan = _plan([(10, "mx2.example.org"), (20, "mx3.example.org")], {})
    assert plan.conclusion == "loop"
    assert plan.failure is not None
    assert str(plan.failure) == "554 5.4.6 Mail for example.org loops back to myself (best MX)"
    assert plan.verdict is Verdict.UNAVAILABLE


def test_address_limit_per_delivery() -> None:
    many = [f"192.0.2.{i}" for i in range(1, 13)]
    plan = _plan(
        [(10, "a.example.org"), (20, "b.example.org")],
        {"a.example.org": many, "b.example.org": ["198.51.100.1"]},
    )
    first, second = plan.hosts
    assert (first.tried, second.tried) == (10, 0)  # remote.py stops at 10 addresses


def test_no_host_with_an_address() -> None:
    permanent = _plan(
        [(10, "a.example.org"), (20, "b.example.org")],
        {"a.example.org": NoSuchDomain(), "b.example.org": NoRecords()},
    )
    assert str(permanent.failure) == "550 5.4.4 Host b.example.org has no address"
    assert permanent.verdict is Verdict.NO_HOST
    temporary = _plan(
        [(10, "a.example.org"), (20, "b.example.org")],
        {"a.example.org": LookupFailed("timed out"), "b.example.org": NoSuchDomain()},
    )
    # Any temporary reason defers rather than bounces (remote.py's leftovers).
    assert str(temporary.failure) == "451 4.4.3 DNS lookup for a.example.org failed: timed out"
    assert temporary.verdict is Verdict.TEMPORARY


def test_implicit_mx_and_relay_host() -> None:
    implicit = _plan([], {"example.org": ["192.0.2.9"]})
    assert (implicit.conclusion, [h.name for h in implicit.hosts]) == ("implicit", ["example.org"])
    assert implicit.hosts[0].preference is None
    nexthop, target = remote_plan.target_of(
        TransportTable({"*": "smtp:[relay.example.net]:587"}), "example.org"
    )
    assert (target.source, target.label, target.mx) == (
        "routes.*",
        "[relay.example.net]:587",
        False,
    )
    facts = remote_plan.DnsFacts(mx=None, addresses={"relay.example.net": ["203.0.113.5"]})
    plan = remote_plan.plan("example.org", nexthop, target, facts, SmtpClientConfig(), ME)
    assert (plan.conclusion, plan.port, plan.hosts[0].tried) == ("relay", 587, 1)


def test_timeline_rfc1123() -> None:
    t = timeline(schedule.PROFILES["rfc1123"], "rfc1123")
    hours = [a / 3600 for a in t.attempts[:7]]
    assert hours == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 23.5]
    assert t.warn_at == 7.5 * 3600  # the first failed attempt at least 4 h after arrival
    assert t.give_up_at == t.attempts[-1] >= 5 * 86400 > t.attempts[-2]


def test_timeline_without_warnings() -> None:
    policy = schedule.policy_from("fast", (60.0,), 300.0, 0.0)
    t = timeline(policy, "fast")
    assert t.attempts == (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)
    assert t.warn_at is None


def test_verdicts() -> None:
    assert verdict_of(Reply(550, "5.1.1", ("x",))) is Verdict.NO_USER
    assert verdict_of(Reply(556, "5.1.10", ("x",))) is Verdict.NO_HOST
    assert verdict_of(Reply(550, "5.1.2", ("x",))) is Verdict.NO_HOST
    assert verdict_of(Reply(554, "5.4.6", ("x",))) is Verdict.UNAVAILABLE
    assert verdict_of(Reply(451, "4.4.3", ("x",))) is Verdict.TEMPORARY
    assert worst([Verdict.DELIVERABLE, Verdict.TEMPORARY]) is Verdict.TEMPORARY
    assert worst([Verdict.TEMPORARY, Verdict.NO_HOST]) is Verdict.NO_HOST
    assert worst([]) is Verdict.DELIVERABLE
    assert [v.exit_code for v in Verdict] == [0, 67, 68, 69, 75]


def test_duration() -> None:
    assert duration(0) == "0s"
    assert duration(90061) == "1d1h1m1s"
    assert duration(5 * 86400 + 7.5 * 3600) == "5d7h30m"
