"""Outgoing connection limits and the cache of idle connections for reuse.

Owns: the global and per-destination limits on connections in use (`Slots`), and
keeping a connection open for a few seconds after a message so that the next message to
the same destination can use it (`ConnectionCache`, like Postfix's scache): making it
ready for the next transaction is the caller's (the RSET that begins each transaction on
a used connection, `smtp_transaction.py`), closing with QUIT when it expires or the limit of
messages per connection is reached is ours. Does not own the SMTP dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from posthorn.delivery.smtp_client import SmtpConnection

__all__ = ["ConnectionCache", "Slots"]


class Slots:
    """At most `total` deliveries at once, and at most `per_destination` per destination."""

    def __init__(self, total: int, per_destination: int) -> None:
        self.total = asyncio.Semaphore(total)
        self.per_destination = per_destination
        self._by_key: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        semaphore, users = self._by_key.setdefault(
            key, (asyncio.Semaphore(self.per_destination), [0])
        )
        users[0] += 1
        try:
            async with semaphore, self.total:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._by_key[key]


class ConnectionCache:
    """Idle connections by destination, each kept for `reuse_time` seconds at most."""

    def __init__(self, reuse_time: float, reuse_limit: int) -> None:
        self.reuse_time = reuse_time
        self.reuse_limit = reuse_limit
        self._idle: dict[str, list[SmtpConnection]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def take(self, key: str) -> SmtpConnection | None:
        """The most recently used idle connection to `key` that is still fresh."""
        idle = self._idle.get(key, [])
        while idle:
            conn = idle.pop()
            if not conn.closed and time.monotonic() - conn.idle_since < self.reuse_time:
                return conn
            self._quit(conn)
        self._idle.pop(key, None)
        return None

    def put(self, key: str, conn: SmtpConnection) -> None:
        """Keep a healthy connection for the next message, or close it politely."""
        if conn.closed or not self.reuse_time or conn.transactions >= self.reuse_limit:
            self._quit(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(key, []).append(conn)
        asyncio.get_running_loop().call_later(self.reuse_time, self._expire, key, conn)

    def _expire(self, key: str, conn: SmtpConnection) -> None:
        idle = self._idle.get(key, [])
        if conn in idle and time.monotonic() - conn.idle_since >= self.reuse_time * 0.99:
            idle.remove(conn)
            if not idle:
                self._idle.pop(key, None)
            self._quit(conn)

    def _quit(self, conn: SmtpConnection) -> None:
        if conn.closed:
            return
        task = asyncio.get_running_loop().create_task(conn.quit())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """QUIT every idle connection (at shutdown)."""
        for idle in self._idle.values():
            for conn in idle:
                self._quit(conn)
        self._idle.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
