"""The pure MX ordering of RFC 5321 section 5.1 and RFC 7505, over answer values."""

from __future__ import annotations

import random
from collections import Counter

from posthorn.dns import (
    LookupFailed,
    MxRecord,
    MxRecords,
    NoRecords,
    NoSuchDomain,
    mx_candidates,
)
from posthorn.outcome import Deferred, Failed


def _records(*pairs: tuple[int, str]) -> MxRecords:
    return MxRecords(tuple(MxRecord(p, h) for p, h in pairs))


def test_sorted_by_preference() -> None:
    answer = _records((30, "c.test"), (10, "a.test"), (20, "b.test"))
    assert mx_candidates("x.test", answer) == ["a.test", "b.test", "c.test"]


def test_equal_preferences_come_in_random_order() -> None:
    answer = _records((10, "a.test"), (10, "b.test"), (10, "c.test"), (20, "z.test"))
    rng = random.Random(1)
    firsts = Counter()
    for _ in range(300):
        order = mx_candidates("x.test", answer, shuffle=rng.shuffle)
        assert isinstance(order, list)
        assert order[-1] == "z.test"
        assert sorted(order[:3]) == ["a.test", "b.test", "c.test"]
        firsts[order[0]] += 1
    assert set(firsts) == {"a.test", "b.test", "c.test"}
    assert min(firsts.values()) > 60  # roughly a third each


def test_no_mx_means_the_domain_itself() -> None:
    assert mx_candidates("x.test", NoRecords()) == ["x.test"]


def test_null_mx_fails_at_once() -> None:
    outcome = mx_candidates("x.test", _records((0, "")))
    assert isinstance(outcome, Failed)
    assert (outcome.reply.code, outcome.reply.esc) == (556, "5.1.10")


def test_a_null_mx_among_real_ones_is_ignored() -> None:
    assert mx_candidates("x.test", _records((0, ""), (10, "a.test"))) == ["a.test"]


def test_nxdomain_fails_and_temporary_trouble_defers() -> None:
    failed = mx_candidates("x.test", NoSuchDomain())
    assert isinstance(failed, Failed)
    assert (failed.reply.code, failed.reply.esc) == (550, "5.1.2")
    deferred = mx_candidates("x.test", LookupFailed("timed out"))
    assert isinstance(deferred, Deferred)
    assert (deferred.reply.code, deferred.reply.esc) == (451, "4.4.3")


def test_when_we_are_an_mx_only_better_ones_are_tried() -> None:
    answer = _records((10, "primary.test"), (20, "me.test"), (30, "worse.test"))
    assert mx_candidates("x.test", answer, me={"ME.test."}) == ["primary.test"]


def test_when_we_are_the_best_mx_the_mail_loops() -> None:
    outcome = mx_candidates("x.test", _records((10, "me.test"), (20, "b.test")), me={"me.test"})
    assert isinstance(outcome, Failed)
    assert outcome.reply.esc == "5.4.6"
