"""The retry timeline of `posthorn explain`: when a deferred delivery is tried again, when
the sender is warned, when the message is bounced.

Owns: playing the queue runner's rules forward for a delivery that keeps failing
temporarily, with the schedule functions the runner uses (`queue/schedule.py`): after
each failed attempt either the message has expired (it bounces; RFC 1123 section
5.3.1.1) or the next attempt follows the policy's delays, and the first failed attempt
past the warning time sends the delay DSN (RFC 3464 `Action: delayed`). Pure: times are
seconds after arrival. Does not own the policy (config `[queue]`).
"""

from __future__ import annotations

from posthorn.explain.model import Timeline
from posthorn.queue import schedule

__all__ = ["timeline"]


def timeline(policy: schedule.RetryPolicy, profile: str) -> Timeline:
    attempts = [0.0]
    warn_at: float | None = None
    now = 0.0
    # The runner's `_update`, attempt after attempt: expiry first, then warning, then
    # the next attempt. Delays are positive, so the loop reaches `give_up`.
    while not schedule.is_expired(policy, 0.0, now):
        if warn_at is None and schedule.needs_warning(policy, 0.0, now, warned=False):
            warn_at = now
        now = schedule.next_attempt(policy, len(attempts), now)
        attempts.append(now)
    return Timeline(
        profile=profile,
        delays=policy.delays,
        attempts=tuple(attempts),
        warn_at=warn_at,
        warn_after=policy.warn_after,
        give_up_at=now,
        give_up_after=policy.give_up,
    )
