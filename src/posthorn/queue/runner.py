"""The queue runner: the one loop out. Due messages -> route -> deliver -> record.

Owns: claiming due messages under a lease, routing each pending recipient, calling the
transport for each route (recipients that share a route are delivered together, and all
those of a transport with `all_routes_at_once`, such as LMTP's, in one call), turning
outcomes into recipient updates with the retry policy (expiry included), asking the
bouncer for DSNs, and recording everything in one store call per message. It takes a
clock and a sleep function and never reads the time itself, so tests advance time
without sleeping. Does not own any delivery mechanics.

A bug in a transport or the router is logged and the recipients deferred on the retry
schedule, with the exception's class in their diagnostic; a bug anywhere else in one
message's run defers the whole message the same way. The runner never dies of it, and
never retries such a message in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from posthorn import log
from posthorn.outcome import Deferred, Delivered, Failed, Outcome
from posthorn.queue import schedule
from posthorn.queue.model import (
    NewMessage,
    QueuedMessage,
    RcptState,
    RecipientStatus,
    RecipientUpdate,
)
from posthorn.queue.store import ContentUnreadable, QueueStore, StoreError
from posthorn.routing.router import Refused, Route, Router
from posthorn.smtp.reply import Reply

__all__ = ["Bouncer", "Runner", "Transport"]

_log = log.get("qmgr")
_NO_SUCH_USER = Reply(550, "5.1.1", ("Recipient address rejected: User unknown",))
_MAX_IDLE = 60.0  # look at the queue at least this often, whatever the store says


def _crashed(what: str, exc: Exception) -> Reply:
    """The diagnostic for a bug: the exception's class only (its text stays in the log,
    since the diagnostic can reach the sender in a DSN)."""
    return Reply(451, "4.3.0", (f"{what} ({type(exc).__name__}); see the mail log",))


class Transport(Protocol):
    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]: ...


class Bouncer(Protocol):
    def __call__(
        self,
        message: QueuedMessage,
        content: bytes,
        results: Sequence[tuple[RecipientStatus, RecipientUpdate, Outcome]],
        now: float,
    ) -> list[NewMessage]:
        """DSNs (failure, delay) for these results; [] when none is due."""
        ...


def _no_bounces(
    message: QueuedMessage,
    content: bytes,
    results: Sequence[tuple[RecipientStatus, RecipientUpdate, Outcome]],
    now: float,
) -> list[NewMessage]:
    return []


class Runner:
    def __init__(
        self,
        store: QueueStore,
        router: Router,
        transports: dict[type, Transport],
        policy: schedule.RetryPolicy,
        *,
        owner: str,
        lease: float = 600.0,
        concurrency: int = 20,
        bouncer: Bouncer = _no_bounces,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.router = router
        self.transports = transports
        self.policy = policy
        self.owner = owner
        self.lease = lease
        self.concurrency = concurrency
        self.bouncer = bouncer
        self.clock = clock
        self.sleep = sleep
        self._wakeup = asyncio.Event()
        self._active: set[asyncio.Task[None]] = set()
        self._leased: set[str] = set()  # queue ids being delivered under our lease
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Something may be due now (new mail, a flush): look at the queue."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop claiming; let deliveries in progress finish."""
        self._stopping = True
        self._wakeup.set()
        if self._active:
            await asyncio.gather(*self._active, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()

    async def run(self) -> None:
        await self.store.release_all(self.owner)
        self._renewer = asyncio.create_task(self._renew_leases(), name="lease-renewer")
        try:
            await self._loop()
        finally:
            if not self._stopping:  # cancelled from outside; else stop() ends the renewer
                self._renewer.cancel()

    async def _renew_leases(self) -> None:
        """Keep the leases of deliveries in progress. Every third of the lease, so that a
        renewal can fail (the database is briefly away) before a lease runs out; a node
        that dies stops renewing, and its leases expire one lease after the last renewal."""
        while True:
            await self.sleep(self.lease / 3)
            if self._leased:
                try:
                    until = self.clock() + self.lease
                    await self.store.renew(sorted(self._leased), self.owner, until)
                except StoreError as exc:
                    _log.warning("cannot renew queue leases: %s", exc)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            free = self.concurrency - len(self._active)
            claimed: list[QueuedMessage] = []
            if free > 0:
                try:
                    claimed = await self.store.claim(self.clock(), free, self.lease, self.owner)
                except StoreError as exc:
                    _log.error("cannot read the queue: %s", exc)
            for message in claimed:
                task = asyncio.create_task(self._process(message))
                self._active.add(task)
                task.add_done_callback(self._finished)
            if claimed:
                continue
            await self._idle(free)

    async def run_once(self) -> int:
        """Deliver everything due now and wait for it; returns how many were claimed."""
        claimed = await self.store.claim(self.clock(), 1_000_000, self.lease, self.owner)
        await asyncio.gather(*(self._process(m) for m in claimed))
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._active.discard(task)
        self._wakeup.set()

    async def _idle(self, free: int) -> None:
        """Wait for a wake-up, the next due time, or a free delivery slot."""
        timeout = _MAX_IDLE
        if free > 0:
            with contextlib.suppress(StoreError):
                due = await self.store.next_due()
                if due is not None:
                    timeout = min(timeout, max(0.0, due - self.clock()))
        if timeout <= 0 or self._wakeup.is_set():
            return
        waiter = asyncio.ensure_future(self._wakeup.wait())
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        sleeper.cancel()

    # -- one message -----------------------------------------------------------------

    async def _process(self, message: QueuedMessage) -> None:
        self._leased.add(message.qid)
        try:
            await self._deliver_message(message)
        except ContentUnreadable as exc:
            # This message's trouble: releasing it would make it due again at once, and
            # its content would fail again, in a tight loop. On the retry schedule
            # instead, for the operator to see in the queue listing.
            _log.error("%s: cannot read the queued content: %s", message.qid, exc)
            await self._defer_after_crash(message, exc)
        except StoreError as exc:
            # The queue database, not the message: a store reconnects on its next use,
            # so the message is due again as soon as the store answers.
            _log.warning("%s: delivery run interrupted: %s", message.qid, exc)
            with contextlib.suppress(StoreError):
                await self.store.release(message.qid, self.owner)
        except Exception as exc:
            _log.exception("%s: delivery run failed; will retry", message.qid)
            await self._defer_after_crash(message, exc)
        finally:
            self._leased.discard(message.qid)

    async def _deliver_message(self, message: QueuedMessage) -> None:
        content = await self.store.content(message.qid)
        if content is None:
            return
        groups: dict[object, tuple[Route | None, list[RecipientStatus]]] = {}
        outcomes: dict[int, Outcome] = {}
        for rcpt in message.pending:
            try:
                # A route fixed at intake (file, pipe, refused) wins over the address's.
                route = rcpt.recipient.route or self.router.route(rcpt.recipient.address)
            except Exception as exc:
                _log.exception("%s: routing <%s> raised", message.qid, rcpt.recipient.address)
                outcomes[rcpt.index] = Deferred(_crashed("Routing failed", exc))
                continue
            groups.setdefault(self._group(route), (route, []))[1].append(rcpt)
        for route, rcpts in groups.values():
            outcomes.update(await self._deliver_route(message, content, route, rcpts))
        now = self.clock()
        results = [
            (rcpt, self._update(message, rcpt, outcomes[rcpt.index], now), outcomes[rcpt.index])
            for rcpt in message.pending
        ]
        for rcpt, update, outcome in results:
            self._log_result(message, rcpt, update, outcome, now)
        bounces = self.bouncer(message, content, results, now)
        await self.store.record(message.qid, [u for _, u, _ in results], self.owner, bounces)
        if not any(u.state is RcptState.PENDING for _, u, _ in results):
            _log.info("%s: removed", message.qid)
        if bounces:
            self.wake()

    def _group(self, route: Route | None) -> object:
        """Recipients with the same key are delivered in one call: those of one route, or
        all those of a transport that takes every route it serves at once (LMTP: one
        transaction, several mailboxes, a verdict each; RFC 2033 section 4.2)."""
        transport = self.transports.get(type(route)) if route is not None else None
        return transport if getattr(transport, "all_routes_at_once", False) else route

    async def _deliver_route(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route | None,
        rcpts: list[RecipientStatus],
    ) -> dict[int, Outcome]:
        if route is None:
            return {r.index: Failed(_NO_SUCH_USER, "local") for r in rcpts}
        if isinstance(route, Refused):
            return {r.index: Failed(route.reply, "local") for r in rcpts}
        transport = self.transports.get(type(route))
        if transport is None:
            reply = Reply(451, "4.3.5", (f"No transport for {type(route).__name__} routes",))
            return {r.index: Deferred(reply) for r in rcpts}
        missing = Deferred(Reply(451, "4.3.0", ("Delivery agent failed",)))
        try:
            found = await transport.deliver(message, content, route, rcpts)
        except Exception as exc:
            _log.exception("%s: transport %s raised", message.qid, type(transport).__name__)
            found, missing = {}, Deferred(_crashed("Delivery agent failed", exc))
        return {r.index: found.get(r.index, missing) for r in rcpts}

    async def _defer_after_crash(self, message: QueuedMessage, exc: Exception) -> None:
        """Put every pending recipient back on the retry schedule (releasing the lease
        alone would make the message due again at once: a tight loop of the same bug).
        Never expires or bounces here: that waits for a run that works."""
        now = self.clock()
        text = str(_crashed("Delivery run failed", exc))
        updates = [
            RecipientUpdate(
                r.index,
                RcptState.PENDING,
                text,
                r.relay,
                schedule.next_attempt(self.policy, r.attempts + 1, now),
            )
            for r in message.pending
        ]
        try:
            await self.store.record(message.qid, updates, self.owner, [])
        except StoreError:
            with contextlib.suppress(StoreError):
                await self.store.release(message.qid, self.owner)

    def _update(
        self, message: QueuedMessage, rcpt: RecipientStatus, outcome: Outcome, now: float
    ) -> RecipientUpdate:
        reply_text = str(outcome.reply)
        if isinstance(outcome, Delivered):
            return RecipientUpdate(rcpt.index, RcptState.DELIVERED, reply_text, outcome.relay)
        if isinstance(outcome, Failed):
            return RecipientUpdate(rcpt.index, RcptState.FAILED, reply_text, outcome.relay)
        if schedule.is_expired(self.policy, message.envelope.arrival, now):
            text = f"{reply_text} (gave up: message too old)"
            return RecipientUpdate(rcpt.index, RcptState.FAILED, text, outcome.relay)
        due = schedule.next_attempt(self.policy, rcpt.attempts + 1, now)
        # RFC 3464 Action: delayed, once, when the message has waited long enough.
        warn = schedule.needs_warning(self.policy, message.envelope.arrival, now, rcpt.warned)
        return RecipientUpdate(
            rcpt.index, RcptState.PENDING, reply_text, outcome.relay, due, True if warn else None
        )

    def _log_result(
        self,
        message: QueuedMessage,
        rcpt: RecipientStatus,
        update: RecipientUpdate,
        outcome: Outcome,
        now: float,
    ) -> None:
        status = {
            RcptState.DELIVERED: "sent",
            RcptState.FAILED: "bounced",
            RcptState.PENDING: "deferred",
        }[update.state]
        _log.info(
            "%s: to=<%s>, relay=%s, delay=%.2f, status=%s (%s)",
            message.qid,
            rcpt.recipient.address,
            outcome.relay or "none",
            max(0.0, now - message.envelope.arrival),
            status,
            update.last_reply,
        )
