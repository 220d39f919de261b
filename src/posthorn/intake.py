"""The one door into the queue: every message enters here, whoever hands it in.

Owns: what happens between "the message is complete" and "250 queued": the hop-count
check (RFC 5321 section 6.3), the queue id, trace headers prepended as bytes (Received,
and Message-ID and Date when missing), recipient rewriting (`<Postmaster>` to the
primary domain, alias expansion when routing provides it), the durable commit, and
waking the runner. Callers: the SMTP session, local submission, bounces.

Returns a `Reply` for every outcome; a store failure is a 451, never an exception.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from posthorn import log
from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.message import headers
from posthorn.queue.model import NewMessage, new_queue_id
from posthorn.queue.store import QueueStore, StoreError
from posthorn.smtp.reply import Reply

__all__ = ["Intake"]

_log = log.get("cleanup")


class Intake:
    def __init__(
        self,
        store: QueueStore,
        *,
        hostname: str,
        postmaster_domain: str,
        max_received: int = 100,
        hold: bool = False,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[str], None] = lambda qid: None,
    ) -> None:
        self.store = store
        self.hostname = hostname
        self.postmaster_domain = postmaster_domain
        self.max_received = max_received
        self.hold = hold
        self.clock = clock
        self.on_commit = on_commit

    def _recipients(self, recipients: tuple[Recipient, ...]) -> tuple[Recipient, ...]:
        # RFC 5321 section 4.1.1.3: <Postmaster> means the postmaster of this host.
        return tuple(
            dataclasses.replace(r, address=Address(r.address.local, self.postmaster_domain))
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
        uid: int | None = None,
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
        if not headers.has_header(block, "Message-ID"):
            prefix += headers.message_id(qid, self.hostname, now)
        if not headers.has_header(block, "Date"):
            prefix += headers.date_header(now)
        if content and not content.startswith(b"\r\n") and not headers.starts_with_header(content):
            # The content has no header section: keep its first line out of ours.
            prefix += b"\r\n"
        return prefix

    async def submit(
        self,
        envelope: Envelope,
        content: bytes,
        *,
        tls: str = "",
        hold: bool | None = None,
        uid: int | None = None,
    ) -> Reply:
        """Queue a message; the reply says whether it is now safe on disk.

        `uid`: the local user who submitted it (sendmail interface), for the Received line.
        """
        if not envelope.recipients:
            return Reply(554, "5.5.1", ("Error: no valid recipients",))
        hops = headers.count_received(headers.header_block(content))
        if hops > self.max_received:
            # RFC 5321 section 6.3: too many Received fields means a mail loop.
            return Reply(554, "5.4.6", (f"Too many hops ({hops} Received headers): mail loop?",))
        now = self.clock()
        qid = new_queue_id(now)
        envelope = dataclasses.replace(
            envelope, recipients=self._recipients(envelope.recipients), arrival=now
        )
        data = self._trace(envelope, qid, content, now, tls, uid) + content
        held = self.hold if hold is None else hold
        try:
            await self.store.commit(NewMessage(qid, envelope, data, held))
        except StoreError as exc:
            _log.error("queue write failed: %s", exc)
            return Reply(451, "4.3.0", ("Error: queue file write error",))
        _log.info(
            "%s: from=<%s>, size=%d, nrcpt=%d (%s)",
            qid,
            envelope.sender_text,
            len(data),
            len(envelope.recipients),
            "queue hold" if held else "queue active",
        )
        if not held:
            self.on_commit(qid)
        return Reply(250, "2.0.0", (f"Ok: queued as {qid}",))
