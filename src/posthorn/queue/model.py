"""Queue records: what the store keeps about each message and each of its recipients.

Owns: `NewMessage` (what intake hands in), `QueuedMessage` and `RecipientStatus` (what
the store gives back), `RecipientUpdate` (what the runner records) and queue ids. Pure
values; no I/O. Does not own storage (`store.py` and its implementations).
"""

from __future__ import annotations

import enum
import itertools
import os
import time
from dataclasses import dataclass

from posthorn.envelope import Envelope, Recipient

__all__ = [
    "NewMessage",
    "QueuedMessage",
    "RcptState",
    "RecipientStatus",
    "RecipientUpdate",
    "new_queue_id",
]


def _fresh_counter() -> itertools.count[int]:
    return itertools.count(int.from_bytes(os.urandom(2), "big"))


_counter = _fresh_counter()


def _reseed() -> None:
    # Worker processes are forked from one supervisor: without this they would all
    # count from the same start, in step, and meet in the same microsecond.
    global _counter
    _counter = _fresh_counter()


os.register_at_fork(after_in_child=_reseed)


def new_queue_id(now: float | None = None) -> str:
    """A 16-character upper-case hex id, sortable by arrival time.

    Microseconds since the epoch (13 digits) and a wrapping per-process counter that
    starts at a random value (3 digits; a forked process draws its own): unique within
    a process, and across processes unless two of them pick the same counter value in
    the same microsecond, which the stores report as `QueueIdTaken` and intake answers
    by trying again with new ids.
    """
    micros = int((time.time() if now is None else now) * 1_000_000)
    return f"{micros:013X}{next(_counter) % 4096:03X}"


class RcptState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient of a queued message and where its delivery stands."""

    index: int
    recipient: Recipient
    state: RcptState = RcptState.PENDING
    attempts: int = 0
    last_reply: str = ""  # e.g. "451 4.4.1 Connection refused"
    relay: str = ""
    next_attempt: float = 0.0
    warned: bool = False  # a delay DSN was sent


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message on its way into the queue: envelope plus complete CRLF content."""

    qid: str
    envelope: Envelope
    content: bytes
    hold: bool = False


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message in the queue, without its content (fetched separately)."""

    qid: str
    envelope: Envelope
    size: int
    recipients: tuple[RecipientStatus, ...]
    hold: bool = False
    lease_owner: str = ""
    lease_until: float = 0.0

    @property
    def pending(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if r.state is RcptState.PENDING)


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The result of one delivery attempt for one recipient, as the runner records it."""

    index: int
    state: RcptState
    last_reply: str
    relay: str = ""
    next_attempt: float = 0.0
    warned: bool | None = None  # None: leave as it is
