"""A byte stream over an asyncio transport, as a Protocol: what SMTP drivers read and write.

Owns: taking bytes from the transport as they arrive (no stream buffer in between), flow
control both ways (reading pauses while too much is unread; `drain` waits only while the
peer is slow), the read timeout (one timer per connection, moved lazily), half-closes,
and the TLS upgrade of the same connection, which first drops any plaintext already
read (RFC 3207 section 4.2: nothing received before the handshake may count after it;
the CVE-2011-0411 injection). The server's connections and the relay client's both run
on it. Does not own any protocol.

`read` raises TimeoutError; `drain` raises ConnectionResetError when the connection is
gone; `start_tls` raises what the handshake raises (OSError, ssl.SSLError, TimeoutError).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

__all__ = ["StreamWire"]

_HIGH_WATER = 1 << 20  # unread octets at which reading pauses (bounded memory per peer)


class StreamWire(asyncio.Protocol):
    def __init__(self, on_connect: Callable[[StreamWire], None] | None = None) -> None:
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self.discarded = 0  # plaintext octets dropped at the TLS upgrade
        self._chunks: list[bytes] = []
        self._unread = 0
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drainer: asyncio.Future[None] | None = None
        # The read deadline, and the one timer that checks it: a read sets the deadline
        # without touching the timer unless it must fire sooner (creating and cancelling
        # a timer for every read cost more than the rest of a short read).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # The loop, kept: asyncio.get_running_loop() makes a getpid system call in
        # Python 3.11 (it checks for a fork), and a read would ask for it every time.
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._unread += len(data)
        if self._unread >= _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # keep the transport: replies may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drainer is not None and not self._drainer.done():
            self._drainer.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return  # no read waiting: the next one arms the timer again
        loop = self._loop or asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._waiter.set_exception(TimeoutError())
        else:  # reads since the timer was set moved the deadline on
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            if self._timer_at <= self._deadline:
                return  # it fires in time, and then looks at the deadline again
            self._timer.cancel()
        self._timer_at = self._deadline
        self._timer = loop.call_at(self._deadline, self._check_deadline)

    # -- reading and writing ---------------------------------------------------------

    @property
    def peername(self) -> tuple[str, int]:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("", 0)

    @property
    def at_eof(self) -> bool:
        """The peer has closed (or the connection is gone) and everything was read."""
        return (self._eof or self._lost) and not self._chunks

    @property
    def congested(self) -> bool:
        """The transport's write buffer is over its high-water mark: `drain` would wait."""
        return self._writing_paused

    @property
    def closed(self) -> bool:
        return self._lost or self.transport is None or self.transport.is_closing()

    async def read(self, within: float) -> bytes:
        """What has arrived (b"" at end of input); TimeoutError after `within` seconds."""
        if not self._chunks and not self._eof and not self._lost:
            loop = self._loop or asyncio.get_running_loop()
            self._waiter = loop.create_future()
            self._deadline = loop.time() + within
            self._arm(loop)
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            return b""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._unread = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def write(self, data: bytes | bytearray) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark."""
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self._writing_paused:
            self._drainer = asyncio.get_running_loop().create_future()
            await self._drainer

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        handshake_timeout: float = 60.0,
    ) -> ssl.SSLObject | None:
        """Upgrade this connection; returns the TLS session's SSLObject."""
        assert self.transport is not None
        self.discarded = self._unread
        self._chunks.clear()
        self._unread = 0
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self.transport,
            self,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout,
        )
        if transport is None:
            raise ConnectionResetError("connection lost during the TLS handshake")
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        return ssl_object if isinstance(ssl_object, ssl.SSLObject) else None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
