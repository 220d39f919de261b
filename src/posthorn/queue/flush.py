"""Flushing the queue: make deferred mail due now, for everything, one message or a domain.

Owns: reading what to flush (a queue id or a domain), ETRN's node syntax and replies
(RFC 1985), and the reschedule itself through the store. Waking the runner is the
caller's (the running server wakes its own; `posthorn queue flush` sends WAKE over the
control socket). Does not own who may flush (the session allows ETRN to trusted clients).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from posthorn import log
from posthorn.address import is_domain
from posthorn.queue.store import QueueStore, StoreError
from posthorn.smtp.reply import Reply

__all__ = ["Etrn", "flush", "parse_target"]

_log = log.get("qmgr")
_QID = re.compile(r"[0-9A-F]{16}\Z")


def parse_target(text: str | None) -> tuple[str | None, str | None]:
    """'' or None -> everything; a queue id -> (qid, None); a domain -> (None, domain)."""
    if not text:
        return None, None
    if _QID.match(text):
        return text, None
    return None, text.lower().rstrip(".")


async def flush(store: QueueStore, when: float, target: str | None = None) -> int:
    """Make the pending recipients named by `target` due at `when`; how many were."""
    qid, domain = parse_target(target)
    return await store.reschedule(when, qid=qid, domain=domain)


class Etrn:
    """The SMTP session's ETRN handler (RFC 1985): flush one domain and wake the runner."""

    def __init__(
        self,
        store: QueueStore,
        wake: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.wake = wake
        self.clock = clock

    async def __call__(self, argument: str) -> Reply:
        node = argument.strip()
        if node.startswith("#"):
            # RFC 1985 section 5.3: named queues; Posthorn has one queue per domain only.
            return Reply(458, "4.3.0", (f"Unable to queue messages for node {node}",))
        domain = node[1:] if node.startswith("@") else node
        if not is_domain(domain):
            return Reply(501, "5.5.4", ("Syntax: ETRN domain",))
        try:
            count = await flush(self.store, self.clock(), domain)
        except StoreError as exc:
            _log.error("ETRN %s: %s", domain, exc)
            return Reply(458, "4.3.0", (f"Unable to queue messages for node {node}",))
        _log.info("ETRN %s: %d recipient(s) made due", domain, count)
        if not count:
            return Reply(251, "2.0.0", (f"OK, no messages waiting for node {node}",))
        self.wake()
        return Reply(250, "2.0.0", (f"OK, queuing for node {node} started",))
