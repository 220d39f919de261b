"""Queue stores for the QueueStore contract tests (tests/queue/test_store_*.py): a
`Backend` makes stores of one kind on one database, `run` runs a scenario with open
stores, and `message`, `delivered`, `deferred` build the values the scenarios use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient
from posthorn.queue.model import NewMessage, RcptState, RecipientUpdate, new_queue_id
from posthorn.queue.store import QueueStore

T = TypeVar("T")
T0 = 1_700_000_000.0


@dataclass
class Backend:
    name: str
    make: Callable[[], QueueStore]  # a new store object on the same database


def run(backend: Backend, scenario: Callable[..., Coroutine[Any, Any, T]], *more: int) -> T:
    """Run `scenario(store, *other stores)` with open stores on one database."""

    async def main() -> T:
        stores = [backend.make() for _ in range(1 + len(more))]
        for store in stores:
            await store.open()
        try:
            return await scenario(*stores)
        finally:
            for store in stores:
                await store.close()

    return asyncio.run(main())


def message(
    *rcpts: str, content: bytes = b"Subject: t\r\n\r\nbody\r\n", arrival: float = T0
) -> NewMessage:
    envelope = Envelope(
        Address("alice", "example.org"),
        tuple(
            Recipient(
                Address.parse(r, utf8=True),
                frozenset({"SUCCESS", "FAILURE"}) if i == 0 else None,
                f"rfc822;{r}" if i == 0 else None,
            )
            for i, r in enumerate(rcpts or ("bob@example.net",))
        ),
        body="8BITMIME",
        smtputf8=True,
        ret="HDRS",
        envid="env-1",
        client_address="192.0.2.7",
        client_name="client.example.org",
        helo="client.example.org",
        auth_user="alice",
        arrival=arrival,
    )
    return NewMessage(new_queue_id(arrival), envelope, content)


def delivered(index: int) -> RecipientUpdate:
    return RecipientUpdate(index, RcptState.DELIVERED, "250 2.0.0 ok", "mx[192.0.2.1]:25")


def deferred(index: int, until: float) -> RecipientUpdate:
    return RecipientUpdate(index, RcptState.PENDING, "451 4.4.1 refused", "", until)
