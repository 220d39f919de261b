"""When to try again, when to warn, when to give up: retry policy as pure functions.

Owns: the retry profiles and the arithmetic on them (RFC 1123 section 5.3.1.1: the first
retry no sooner than 30 minutes, give up after 4-5 days; RFC 3464 delay warnings). Takes
the time as an argument: it never reads the clock. Does not own the queue or delivery.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PROFILES",
    "RetryPolicy",
    "is_expired",
    "needs_warning",
    "next_attempt",
    "policy_from",
]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays after the 1st, 2nd, ... failed attempt (the last repeats), and limits."""

    delays: tuple[float, ...]
    give_up: float  # seconds after arrival
    warn_after: float = 4 * HOUR  # seconds after arrival; 0 disables delay warnings

    def __post_init__(self) -> None:
        if not self.delays or min(self.delays) <= 0:
            raise ValueError("retry delays must be positive")


PROFILES: dict[str, RetryPolicy] = {
    # RFC 1123 section 5.3.1.1: first retry after at least 30 minutes, growing, 5 days.
    "rfc1123": RetryPolicy((30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR), give_up=5 * DAY),
    # For small sites that want mail through sooner; gives up after 2 days.
    "fast": RetryPolicy(
        (1 * MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR), give_up=2 * DAY
    ),
}


def policy_from(
    profile: str,
    delays: tuple[float, ...] = (),
    give_up: float = 0.0,
    warn_after: float | None = None,
) -> RetryPolicy:
    """A named profile with any of its parts replaced by explicit values (0 or () = keep)."""
    base = PROFILES[profile]
    return RetryPolicy(
        delays or base.delays,
        give_up or base.give_up,
        base.warn_after if warn_after is None else warn_after,
    )


def next_attempt(policy: RetryPolicy, attempts: int, now: float) -> float:
    """The time of the next try after the `attempts`-th failed one (attempts >= 1)."""
    step = min(max(attempts, 1), len(policy.delays)) - 1
    return now + policy.delays[step]


def is_expired(policy: RetryPolicy, arrival: float, now: float) -> bool:
    """True when a message has been in the queue too long to try again."""
    return now - arrival >= policy.give_up


def needs_warning(policy: RetryPolicy, arrival: float, now: float, warned: bool) -> bool:
    """True when a delay DSN is due: not yet sent, and the message waited long enough."""
    return bool(policy.warn_after) and not warned and now - arrival >= policy.warn_after
