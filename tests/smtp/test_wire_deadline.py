"""The wire's read timeout: one timer per connection that follows the latest deadline."""

from __future__ import annotations

import asyncio
import socket

import pytest

from posthorn.wire import StreamWire


async def _pair() -> tuple[StreamWire, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _, wire = await loop.create_connection(StreamWire, sock=ours)
    return wire, theirs


def test_each_read_times_out_at_its_own_deadline() -> None:
    async def go() -> None:
        wire, peer = await _pair()
        loop = asyncio.get_running_loop()
        # A long wait answered at once leaves the timer set far ahead...
        loop.call_later(0.05, peer.send, b"a")
        assert await wire.read(30.0) == b"a"
        # ...and a shorter read must still end on time.
        start = loop.time()
        with pytest.raises(TimeoutError):
            await wire.read(0.2)
        assert 0.15 < loop.time() - start < 5.0
        # A later deadline than the timer's: the timer fires early, finds the deadline
        # moved on, and waits again.
        loop.call_later(0.3, peer.send, b"b")
        assert await wire.read(1.0) == b"b"
        start = loop.time()
        with pytest.raises(TimeoutError):
            await wire.read(0.3)
        assert 0.25 < loop.time() - start < 5.0
        wire.close()
        peer.close()

    asyncio.run(go())


def test_data_that_keeps_coming_never_times_out() -> None:
    async def go() -> None:
        wire, peer = await _pair()
        loop = asyncio.get_running_loop()
        for i in range(5):
            loop.call_later(0.05, peer.send, b"x")
            assert await wire.read(0.2) == b"x", i
        wire.close()
        peer.close()

    asyncio.run(go())
