"""Who is told what about a delivery: the runner's bouncer (failure, delay, success DSNs).

Owns: choosing the results that earn a delivery status notification: failures (and
expiry), the first delay past the warning time, and success when the sender asked for it
with NOTIFY=SUCCESS (RFC 3461 section 4.1; NEVER silences all), never for a message from
the null sender (RFC 5321 section 6.1: no bounce loops); one DSN per kind per run, sent
from `<>` to the envelope sender, through intake's `prepare` so that it gets an id and
trace headers like every other message, for the runner to commit with its results.
Does not own the DSN's text (`posthorn.message.bounce`).
"""

from __future__ import annotations

from collections.abc import Sequence

from posthorn import log
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.message import bounce, downgrade
from posthorn.outcome import Deferred, Delivered, Handoff, Outcome
from posthorn.queue.model import NewMessage, QueuedMessage, RcptState, RecipientStatus
from posthorn.queue.model import RecipientUpdate as Update
from posthorn.queue.schedule import RetryPolicy
from posthorn.smtp.reply import Reply

__all__ = ["Bouncer"]

_log = log.get("bounce")


def _status(reply: Reply) -> str:
    return reply.esc or f"{reply.code // 100}.0.0"


def _remote_mta(relay: str) -> str:
    """'mx1.example.org[192.0.2.1]:25' -> 'mx1.example.org'; '' for local delivery."""
    return "" if relay in ("", "local") else relay.partition("[")[0]


def _wants(rcpt: RecipientStatus, kind: str) -> bool:
    notify = rcpt.recipient.notify
    if notify is None:
        # RFC 3461 section 4.1: without NOTIFY, FAILURE (and DELAY, at our choice).
        return kind in ("FAILURE", "DELAY")
    return kind in notify


class Bouncer:
    """Implements the runner's Bouncer protocol."""

    def __init__(self, intake: Intake, hostname: str, policy: RetryPolicy) -> None:
        self.intake = intake
        self.hostname = hostname
        self.policy = policy

    def __call__(
        self,
        message: QueuedMessage,
        content: bytes,
        results: Sequence[tuple[RecipientStatus, Update, Outcome]],
        now: float,
    ) -> list[NewMessage]:
        if message.envelope.sender is None:
            return []
        groups: dict[str, list[bounce.DsnEntry]] = {}
        for rcpt, update, outcome in results:
            entry = self._entry(message, rcpt, update, outcome, now)
            if entry is not None:
                groups.setdefault(entry.action, []).append(entry)
        out: list[NewMessage] = []
        for entries in groups.values():
            out += self._message(message, content, entries, now)
        return out

    def _entry(
        self,
        message: QueuedMessage,
        rcpt: RecipientStatus,
        update: Update,
        outcome: Outcome,
        now: float,
    ) -> bounce.DsnEntry | None:
        reply = outcome.reply
        status = _status(reply)
        if update.state is RcptState.FAILED and _wants(rcpt, "FAILURE"):
            action = "failed"
            if isinstance(outcome, Deferred):
                status = "5.4.7"  # RFC 3463: delivery time expired
        elif update.state is RcptState.PENDING and update.warned and not rcpt.warned:
            if not _wants(rcpt, "DELAY"):
                return None
            action = "delayed"
        elif update.state is RcptState.DELIVERED and _wants(rcpt, "SUCCESS"):
            if not isinstance(outcome, Delivered) or outcome.handoff is Handoff.DSN_PASSED:
                return None  # the next hop speaks DSN and reports success itself
            action = outcome.handoff.value
        else:
            return None
        retry_until = message.envelope.arrival + self.policy.give_up
        return bounce.DsnEntry(
            recipient=str(rcpt.recipient.address),
            action=action,
            status=status,
            diagnostic=str(reply),
            remote_mta=_remote_mta(outcome.relay),
            original_recipient=rcpt.recipient.orcpt,
            last_attempt=now,
            retry_until=retry_until if action == "delayed" else None,
        )

    def _message(
        self,
        message: QueuedMessage,
        content: bytes,
        entries: list[bounce.DsnEntry],
        now: float,
    ) -> list[NewMessage]:
        original = message.envelope
        assert original.sender is not None
        data = bounce.compose(
            hostname=self.hostname,
            qid=message.qid,
            envelope=original,
            content=content,
            entries=entries,
            now=now,
        )
        envelope = Envelope(
            sender=None,
            recipients=(Recipient(original.sender),),
            body="8BITMIME" if downgrade.has_8bit(data) else None,
            smtputf8=original.sender.needs_smtputf8,
            protocol="local",
        )
        prepared = self.intake.prepare(envelope, data, originating=True)
        if isinstance(prepared, Reply):
            _log.warning("%s: cannot queue a DSN: %s", message.qid, prepared)
            return []
        _log.info(
            "%s: sender %s notification: %s",
            message.qid,
            "non-delivery" if entries[0].action == "failed" else entries[0].action,
            ", ".join(p.qid for p in prepared),
        )
        return prepared
