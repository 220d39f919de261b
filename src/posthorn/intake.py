"""The one door into the queue: every message enters here, whoever hands it in.

Owns: what happens between "the message is complete" and "250 queued": the hop-count
check (RFC 5321 section 6.3), the queue id, trace headers prepended as bytes (Received;
Message-ID and Date when missing from mail that originates here), the DKIM signature of
originating mail when a signer is configured (`mailauth/signing.py`), recipient
rewriting (`<Postmaster>` to the primary domain), alias and forward expansion when
routing provides an expander (so that retries never repeat a fan-out; the queue holds
final recipients), one queue entry per
expanded copy (a list with an owner-LIST sender, a forward's Delivered-To headers), the
durable commit, and waking the runner. Callers: the SMTP session, local submission,
bounces.

Returns a `Reply` for every outcome; a store failure is a 451, never an exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from posthorn import log
from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.message import headers
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.store import QueueIdTaken, QueueStore, StoreError
from posthorn.routing.expand import Copy, ExpansionError
from posthorn.routing.routes import Refused
from posthorn.smtp.reply import Reply

__all__ = ["Expander", "Intake"]

_log = log.get("cleanup")
_ID_TRIES = 3  # ids meeting another process's are rare; three misses in a row are not luck


class Expander(Protocol):
    """Turns envelope recipients into final ones, grouped into copies to queue."""

    def __call__(
        self, sender: Address | None, recipients: Sequence[Recipient], header_block: bytes
    ) -> list[Copy]: ...


def _no_expansion(
    sender: Address | None, recipients: Sequence[Recipient], header_block: bytes
) -> list[Copy]:
    return [Copy(sender, (), tuple(recipients))]


class Intake:
    def __init__(
        self,
        store: QueueStore,
        *,
        hostname: str,
        postmaster_domain: str,
        max_received: int = 100,
        hold: bool = False,
        always_add_ids: bool = False,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[str], None] = lambda qid: None,
        expander: Expander = _no_expansion,
        signer: Callable[[bytes], Awaitable[bytes]] | None = None,
    ) -> None:
        self.store = store
        self.hostname = hostname
        self.postmaster_domain = postmaster_domain
        self.max_received = max_received
        self.hold = hold
        self.always_add_ids = always_add_ids
        self.clock = clock
        self.on_commit = on_commit
        self.expander = expander
        self.signer = signer

    def _recipients(self, recipients: tuple[Recipient, ...]) -> tuple[Recipient, ...]:
        # RFC 5321 section 4.1.1.3: <Postmaster> means the postmaster of this host.
        return tuple(
            dataclasses.replace(r, address=Address("postmaster", self.postmaster_domain))
            if not r.address.domain
            else r
            for r in recipients
        )

    def _trace(
        self,
        envelope: Envelope,
        qid: str,
        content: bytes,
        now: float,
        tls: str,
        first: str,
        uid: int | None,
        originating: bool,
    ) -> bytes:
        block = headers.header_block(content)
        single = envelope.recipients[0].address if len(envelope.recipients) == 1 else None
        prefix = headers.received(
            helo=envelope.helo,
            client_name=envelope.client_name,
            client_address=envelope.client_address,
            hostname=self.hostname,
            protocol=envelope.protocol,
            qid=qid,
            recipient=single,
            now=now,
            tls=tls,
            userid=uid,
        )
        if originating or self.always_add_ids:
            # RFC 5321 section 6.4: an originating or submission server may add them, a
            # relay must not (unless the site asks for it, as Postfix's
            # always_add_missing_headers does). One Message-ID for all copies of one
            # submission: the first queue id's.
            prefix += self._missing_ids(block, now, first)
        if content and not content.startswith(b"\r\n") and not headers.starts_with_header(content):
            # The content has no header section: keep its first line out of ours.
            prefix += b"\r\n"
        return prefix

    def prepare(
        self,
        envelope: Envelope,
        content: bytes,
        *,
        tls: str = "",
        hold: bool | None = None,
        uid: int | None = None,
        originating: bool = False,
    ) -> list[NewMessage] | Reply:
        """Everything the door does short of the commit: checks, expansion, ids, trace.

        One submission can become several queue entries (a list's copies carry the
        owner-LIST sender). For callers that commit in their own transaction (the
        runner records bounces together with delivery outcomes); `submit` is prepare +
        commit. `uid`: the local user who submitted it (the sendmail interface), for the
        Received line. `originating`: the message starts its journey here (a local user,
        a trusted network, an authenticated client, a bounce): then a missing Message-ID
        and Date are added (RFC 6409 sections 8.2-8.3); a relay leaves them alone (RFC
        5321 section 6.4: an intermediate MTA must not make them up).
        """
        if not envelope.recipients:
            return Reply(554, "5.5.1", ("Error: no valid recipients",))
        block = headers.header_block(content)
        hops = headers.count_received(block)
        if hops > self.max_received:
            # RFC 5321 section 6.3: too many Received fields means a mail loop.
            return Reply(554, "5.4.6", (f"Too many hops ({hops} Received headers): mail loop?",))
        now = self.clock()
        envelope = dataclasses.replace(
            envelope, recipients=self._recipients(envelope.recipients), arrival=now
        )
        try:
            copies = self.expander(envelope.sender, envelope.recipients, block)
        except ExpansionError as exc:
            _log.warning("recipient expansion deferred: %s", exc)
            return Reply(451, "4.3.0", ("Error: cannot expand recipients now; try again later",))
        refusal = _all_refused(copies)
        if refusal is not None:
            # Nothing would be delivered: refuse now, so that the client's MTA bounces it.
            return refusal
        held = self.hold if hold is None else hold
        qids = [new_queue_id(now) for _ in copies]
        messages = []
        for copy, qid in zip(copies, qids, strict=True):
            if copy.chain:
                _log.info("%s: expanded from %s", qid, ", ".join(f"<{a}>" for a in copy.chain))
            trace = self._trace(envelope, qid, content, now, tls, qids[0], uid, originating)
            messages.append(self._message(envelope, copy, qid, trace + content, held))
        return messages

    def committed(self, messages: Sequence[NewMessage]) -> None:
        """Log messages that are now in the queue and wake the runner for them."""
        for message in messages:
            env = message.envelope
            _log.info(
                "%s: from=<%s>, size=%d, nrcpt=%d (%s)",
                message.qid,
                env.sender_text,
                len(message.content),
                len(env.recipients),
                "queue hold" if message.hold else "queue active",
            )
            if not message.hold:
                self.on_commit(message.qid)

    async def submit(
        self,
        envelope: Envelope,
        content: bytes,
        *,
        tls: str = "",
        hold: bool | None = None,
        uid: int | None = None,
        originating: bool = False,
    ) -> Reply:
        """Queue a message; the reply says whether it is now safe on disk.

        `originating` (see `prepare`): also sign it with DKIM when a key for its From
        domain is configured. `uid`: see `prepare`.
        """
        if originating and self.signer is not None:
            content = await self._signed(content)
        for _ in range(_ID_TRIES):
            prepared = self.prepare(
                envelope, content, tls=tls, hold=hold, uid=uid, originating=originating
            )
            if isinstance(prepared, Reply):
                return prepared
            try:
                failure = await self._commit(prepared)
            except QueueIdTaken as exc:
                # Another process made the same id in the same microsecond: nothing of
                # this message was kept; prepare it again, with new ids.
                _log.warning("queue id taken, trying new ids: %s", exc)
                continue
            if failure is not None:
                return failure
            self.committed(prepared)
            return Reply(250, "2.0.0", (f"Ok: queued as {prepared[0].qid}",))
        _log.error("queue write failed: no free queue id after %d tries", _ID_TRIES)
        return Reply(451, "4.3.0", ("Error: queue file write error",))

    async def _signed(self, content: bytes) -> bytes:
        """The content with a DKIM-Signature on top. Message-ID and Date are added
        first when missing, so that they are signed (and every copy shares them)."""
        assert self.signer is not None
        now = self.clock()
        content = self._missing_ids(headers.header_block(content), now) + content
        return await self.signer(content) + content

    def _missing_ids(self, block: bytes, now: float, qid: str | None = None) -> bytes:
        """Message-ID (made from `qid`, else from a new queue id) and Date fields for a
        header section without them, as a submission server adds them (RFC 6409
        sections 8.2 and 8.3)."""
        added = b""
        if not headers.has_header(block, "Message-ID"):
            added += headers.message_id(qid or new_queue_id(now), self.hostname, now)
        if not headers.has_header(block, "Date"):
            added += headers.date_header(now)
        return added

    def _message(
        self, envelope: Envelope, copy: Copy, qid: str, traced: bytes, held: bool
    ) -> NewMessage:
        # Each forwarding step left a Delivered-To; the newest goes on top.
        forwards = b"".join(headers.delivered_to(a) for a in reversed(copy.chain))
        data = forwards + traced
        env = envelope
        if copy.sender != envelope.sender or copy.recipients != envelope.recipients:
            # A list's copy, or a changed address (the usual copy is the envelope as is).
            env = dataclasses.replace(envelope, sender=copy.sender, recipients=copy.recipients)
        return NewMessage(qid, env, data, held)

    async def _commit(self, messages: list[NewMessage]) -> Reply | None:
        """Commit all copies (the store batches them into one transaction); if any
        fails, take back the others, so that a retry by the client duplicates nothing."""
        if len(messages) == 1:  # the common case, without gather's machinery
            try:
                await self.store.commit(messages[0])
            except QueueIdTaken:
                raise
            except StoreError as exc:
                _log.error("queue write failed: %s", exc)
                return Reply(451, "4.3.0", ("Error: queue file write error",))
            return None
        results = await asyncio.gather(
            *(self.store.commit(m) for m in messages), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return None
        for message, result in zip(messages, results, strict=True):
            if result is None:
                try:
                    await self.store.delete(message.qid)
                except StoreError as exc:
                    _log.error("%s: cannot take back a partial commit: %s", message.qid, exc)
        for error in errors:
            if not isinstance(error, StoreError):
                raise error
        if all(isinstance(error, QueueIdTaken) for error in errors):
            raise errors[0]  # the copies that did commit were taken back above
        _log.error("queue write failed: %s", errors[0])
        return Reply(451, "4.3.0", ("Error: queue file write error",))


def _all_refused(copies: list[Copy]) -> Reply | None:
    """The reply of the first refused recipient when every recipient is refused."""
    routes = [r.route for c in copies for r in c.recipients]
    if routes and all(isinstance(route, Refused) for route in routes):
        first = routes[0]
        assert isinstance(first, Refused)
        return first.reply
    return None
