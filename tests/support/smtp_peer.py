"""A scriptable SMTP peer on a real loopback socket, for client tests that need a receiver
to misbehave in one exact way (refuse RSET, hold its replies) or to count what a real
MTA does not report (commands per read, connections open at once).

`ScriptedPeer.handle` is an asyncio stream handler: serve it with `asyncio.start_server`
in the test's own loop, or in a thread with `serving(peer, host, port)` when the client
is a Posthorn subprocess. With `pipelining`, the replies to RSET, MAIL and RCPT are held
until DATA ends the group, as RFC 2920 section 3.1 lets a server do: a client that waited
for one of them before sending the rest of its group would wait forever. Without it, the
peer records how many commands each read carried (a lock-step client sends one).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

Reply = Callable[[int, str], bytes | None]  # (session number, command line) -> reply or None


@dataclass
class PeerSession:
    commands: list[str] = field(default_factory=list)
    most_per_read: int = 0  # the most commands one read carried (outside DATA)


@dataclass
class ScriptedPeer:
    pipelining: bool = True
    reply: Reply = lambda session, line: None  # an override of the usual reply, or None
    before_final: Callable[[], Awaitable[None]] | None = None  # awaited before the final 250
    sessions: list[PeerSession] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    on_change: Callable[[int], None] | None = None  # told +1 / -1 as sessions open and close

    def _usual(self, verb: str) -> bytes:
        if verb == "EHLO":
            extra = "250-PIPELINING\r\n" if self.pipelining else ""
            return f"250-peer.test\r\n{extra}250 8BITMIME\r\n".encode()
        return {
            "HELO": b"250 peer.test\r\n",
            "MAIL": b"250 2.1.0 ok\r\n",
            "RCPT": b"250 2.1.5 ok\r\n",
            "RSET": b"250 2.0.0 ok\r\n",
            "DATA": b"354 go ahead\r\n",
            "QUIT": b"221 2.0.0 bye\r\n",
        }.get(verb, b"502 5.5.1 not here\r\n")

    def _open(self, step: int) -> None:
        self.open_now += step
        self.most_open = max(self.most_open, self.open_now)
        if self.on_change is not None:
            self.on_change(step)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(self.sessions)
        session = PeerSession()
        self.sessions.append(session)
        self._open(+1)
        try:
            writer.write(b"220 peer.test ESMTP\r\n")
            await self._converse(number, session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open(-1)
            writer.close()

    async def _converse(
        self,
        number: int,
        session: PeerSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        buffer, held = b"", b""
        while chunk := await reader.read(65536):
            buffer += chunk
            lines = 0
            while b"\r\n" in buffer:
                raw, buffer = buffer.split(b"\r\n", 1)
                line = raw.decode("utf-8", "replace")
                lines += 1
                session.commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                answer = self.reply(number, line) or self._usual(verb)
                held += answer
                if self.pipelining and verb in ("RSET", "MAIL", "RCPT") and answer[:1] == b"2":
                    continue  # RFC 2920 section 3.1: held until the group ends
                writer.write(held)
                held = b""
                if verb == "QUIT" or answer.startswith(b"421"):
                    await writer.drain()
                    return
                if verb == "DATA" and answer.startswith(b"354"):
                    buffer = await self._content(buffer, reader)
                    if self.before_final is not None:
                        await self.before_final()
                    writer.write(b"250 2.0.0 queued\r\n")
            session.most_per_read = max(session.most_per_read, lines)

    async def _content(self, buffer: bytes, reader: asyncio.StreamReader) -> bytes:
        """Read up to the final dot; keep the message; return what came after it."""
        while True:
            if buffer.startswith(b".\r\n"):
                self.messages.append(b"")
                return buffer[3:]
            end = buffer.find(b"\r\n.\r\n")
            if end >= 0:
                self.messages.append(buffer[: end + 2])
                return buffer[end + 5 :]
            chunk = await reader.read(65536)
            if not chunk:
                raise asyncio.IncompleteReadError(buffer, None)
            buffer += chunk


@contextlib.contextmanager
def serving(peer: ScriptedPeer, host: str, port: int) -> Iterator[asyncio.AbstractEventLoop]:
    """Serve `peer` on host:port from a thread of its own (for a client in a subprocess)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    server: list[asyncio.Server] = []

    async def start() -> None:
        server.append(await asyncio.start_server(peer.handle, host, port))
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    assert started.is_set()
    try:
        yield loop
    finally:

        async def stop() -> None:
            server[0].close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
