"""A scriptable SMTP peer on a real loopback socket, for client tests that need a receiver
to misbehave in one exact way (refuse RSET, hold its replies) or to count what a real
MTA does not report (commands per read, connections open at once).

`ScriptedPeer.handle` is an asyncio stream handler: serve it with `asyncio.start_server`
in the test's own loop, or in a thread with `serving(peer, host, port)` when the client
is a Posthorn subprocess. With `pipelining`, the replies to RSET, MAIL and RCPT are held
until DATA ends the group, as RFC 2920 section 3.1 lets a server do: a client that waited
for one of them before sending the rest of its group would wait forever. Without it, the
peer records how many commands each read carried (a lock-step client sends one). It
counts transactions in progress (from MAIL to the final reply), the connections a
client has in use, and can hold the final reply (`before_final`) to keep them busy.
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
    in_transaction: bool = False


@dataclass
class ScriptedPeer:
    pipelining: bool = True
    reply: Reply = lambda session, line: None  # an override of the usual reply, or None
    before_final: Callable[[], Awaitable[None]] | None = None  # awaited before the final 250
    sessions: list[PeerSession] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    busy: int = 0  # transactions in progress now
    most_busy: int = 0
    on_busy: Callable[[int], None] | None = None  # told +1 / -1 as transactions start and end

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

    def _transaction(self, session: PeerSession, start: bool) -> None:
        if session.in_transaction == start:
            return
        session.in_transaction = start
        step = 1 if start else -1
        self.busy += step
        self.most_busy = max(self.most_busy, self.busy)
        if self.on_busy is not None:
            self.on_busy(step)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(self.sessions)
        session = PeerSession()
        self.sessions.append(session)
        try:
            writer.write(b"220 peer.test ESMTP\r\n")
            await self._converse(number, session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._transaction(session, False)
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
                override = self.reply(number, line)  # b'' is silence
                answer = self._usual(verb) if override is None else override
                held += answer
                if verb == "MAIL" and answer[:1] == b"2":
                    self._transaction(session, True)
                elif verb == "RSET":
                    self._transaction(session, False)
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
                    self._transaction(session, False)
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
def serving(*peers: tuple[ScriptedPeer, str, int]) -> Iterator[asyncio.AbstractEventLoop]:
    """Serve each (peer, host, port) from one thread of their own, all on one event loop
    (for a client in a subprocess); yields that loop."""
    loop = asyncio.new_event_loop()
    servers: list[asyncio.Server] = []

    async def start() -> None:
        for peer, host, port in peers:
            servers.append(await asyncio.start_server(peer.handle, host, port))

    async def stop() -> None:
        for server in servers:
            server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield loop
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
