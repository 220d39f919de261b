"""One TCP connection as an asyncio Protocol: the `Wire` the conversation runs over.

Owns: taking bytes from the transport as they arrive (no stream buffer in between),
flow control both ways (reading pauses while too much is unread; writing waits while the
peer is slow), the read timeout, half-closes, and the TLS upgrade on the same
connection, discarding any plaintext read ahead of the handshake (the CVE-2011-0411
injection, one layer below the core's own discard). Does not own the conversation.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

from posthorn.receive.tls import describe

__all__ = ["Channel"]

_HIGH_WATER = 1 << 20  # unread octets at which reading pauses (bounded memory per client)


class Channel(asyncio.Protocol):
    """Created by the listener for each accepted connection."""

    def __init__(
        self,
        on_connect: Callable[[Channel], None],
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = 60.0,
    ) -> None:
        self._on_connect = on_connect
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.transport: asyncio.Transport | None = None
        self.discarded = 0  # plaintext octets dropped at STARTTLS
        self._chunks: list[bytes] = []
        self._unread = 0
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drainer: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
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

    # -- the Wire --------------------------------------------------------------------

    @property
    def peername(self) -> tuple[str, int]:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return (str(peer[0]), int(peer[1])) if peer else ("", 0)

    def _timed_out(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimeoutError())

    async def read(self, within: float) -> bytes:
        if not self._chunks and not self._eof and not self._lost:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(within, self._timed_out)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        if not self._chunks:
            return b""  # EOF, or the connection is gone
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
        if self._lost:
            raise ConnectionResetError("connection lost")
        if self._writing_paused:
            self._drainer = asyncio.get_running_loop().create_future()
            await self._drainer

    async def start_tls(self) -> str:
        assert self.tls is not None
        assert self.transport is not None
        self.discarded = self._unread
        self._chunks.clear()
        self._unread = 0
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            self.transport,
            self,
            self.tls,
            server_side=True,
            ssl_handshake_timeout=self.handshake_timeout,
        )
        if transport is None:
            raise ConnectionResetError("connection lost during the TLS handshake")
        self.transport = transport
        return describe(transport.get_extra_info("ssl_object"))

    def tls_description(self) -> str:
        """For a connection that was TLS from the start (implicit TLS)."""
        return describe(self.transport.get_extra_info("ssl_object")) if self.transport else ""

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
