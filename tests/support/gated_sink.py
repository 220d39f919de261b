"""An SMTP receiver whose final reply waits behind a gate: a destination that holds each
message "in flight" for as long as a test needs (while it kills the sending node).

It records a message as delivered only when it actually sent the 250 for it: a sender
that vanished before the gate opened (SIGKILL) never got a 250 and is not counted, just
as a real receiving MTA would not count it. Runs its own event loop on a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from support.server import free_port, wait_for


@dataclass(frozen=True)
class Accepted:
    subject: str
    helo: str  # who delivered it (the sending node's EHLO name)
    at: float  # time.time() when the 250 was sent


@dataclass
class GatedSink:
    port: int = field(default_factory=free_port)
    accepted: list[Accepted] = field(default_factory=list)
    waiting: int = 0  # messages whose final reply is held at the gate right now
    abandoned: int = 0  # senders that went away while waiting
    _loop: asyncio.AbstractEventLoop | None = None
    _gate: asyncio.Event | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> GatedSink:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "sink did not start"
        return self

    def _main(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        self._gate = asyncio.Event()
        self._server = loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        ready.set()
        loop.run_forever()
        loop.close()

    def open_gate(self) -> None:
        assert self._loop is not None
        assert self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    def subjects(self) -> list[str]:
        with self._lock:
            return [a.subject for a in self.accepted]

    def wait_waiting(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: self.waiting >= count, timeout, f"{count} messages at the gate")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        helo = ""
        writer.write(b"220 sink.test ESMTP gated sink\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    helo = line[5:].strip().decode(errors="replace")
                    writer.write(b"250 sink.test\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    if not await self._message(reader, writer, helo):
                        return
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    return
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        except OSError:
            return
        finally:
            writer.close()

    async def _message(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, helo: str
    ) -> bool:
        subject = ""
        while (line := await reader.readline()) not in (b".\r\n", b""):
            if line.lower().startswith(b"subject:") and not subject:
                subject = line[8:].strip().decode(errors="replace")
        assert self._gate is not None
        self.waiting += 1
        gate = asyncio.ensure_future(self._gate.wait())
        gone = asyncio.ensure_future(reader.read(1))  # b"": the sender went away
        try:
            await asyncio.wait({gate, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.waiting -= 1
            gate.cancel()
        if gone.done():
            self.abandoned += 1
            return False
        gone.cancel()
        writer.write(b"250 2.0.0 accepted\r\n")
        await writer.drain()
        with self._lock:
            self.accepted.append(Accepted(subject, helo, time.time()))
        return True
