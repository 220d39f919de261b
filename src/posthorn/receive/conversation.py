"""One SMTP conversation: the loop between a byte channel, the server core and a session.

Owns: `next_event` / read / `session.handle` / `send`, in that order, for every driver
(the TCP listener and `sendmail -bs` on stdin/stdout); writing the replies to pipelined
commands together once no further command is buffered (RFC 2920 section 3.2); the idle,
data and whole-session timeouts (RFC 5321 section 4.5.3.2; the last against slowloris);
and the hand-over to TLS after a 220 to STARTTLS (RFC 3207). Does not own sockets,
protocol rules or policy: the `Wire` is the channel, the core the rules, the session
the policy.

Raises what the wire raises for a broken connection (OSError, ConnectionError).
"""

from __future__ import annotations

import time
from typing import Protocol

from posthorn import log
from posthorn.receive.session import Session
from posthorn.smtp import events as ev
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ServerConnection, State

__all__ = ["Timeouts", "Wire", "converse"]

_log = log.get("smtpd")


class Wire(Protocol):
    """The byte channel a conversation runs over."""

    async def read(self, within: float) -> bytes:
        """What has arrived (b"" at end of input); TimeoutError after `within` seconds."""
        ...

    def write(self, data: bytes | bytearray) -> None: ...

    async def drain(self) -> None:
        """Wait until the peer has taken enough of what was written."""
        ...

    async def begin_tls(self) -> str:
        """Upgrade to TLS; returns its description for the Received header."""
        ...


class Timeouts:
    """Seconds to wait for a command, for each block of message data, and for the
    whole session; `clock` is monotonic seconds."""

    __slots__ = ("clock", "command", "data", "deadline")

    def __init__(self, command: float, data: float, session: float = 0.0) -> None:
        self.command = command
        self.data = data
        self.clock = time.monotonic
        self.deadline = self.clock() + session if session else float("inf")


async def converse(conn: ServerConnection, session: Session, wire: Wire, limits: Timeouts) -> None:
    """Run the conversation to its end: QUIT, a 421, a timeout, or the peer's EOF."""
    out = bytearray(conn.send(session.greeting()))
    while True:
        event = conn.next_event()
        if event is ev.Wait.NEED_DATA:
            if out:
                wire.write(out)
                out = bytearray()
                await wire.drain()
            timeout = limits.data if conn.state in (State.DATA, State.BDAT) else limits.command
            # A client that trickles bytes resets the idle timer; the session's own
            # deadline is what stops it (slowloris).
            remaining = limits.deadline - limits.clock()
            try:
                data = await wire.read(max(0.0, min(timeout, remaining)))
            except TimeoutError:
                which = "timeout" if timeout < remaining else "session time limit"
                text = f"{session.hostname} Error: {which} exceeded"
                wire.write(conn.send(Reply(421, "4.4.2", (text,))))
                _log.info("%s after %s from %s", which, conn.state.name, session.peer)
                return
            conn.receive_data(data)
            continue
        if isinstance(event, ev.ConnectionClosed):
            if conn.state in (State.DATA, State.BDAT):
                _log.info("lost connection after %s from %s", conn.state.name, session.peer)
            return
        answer = await session.handle(event)
        if answer is None:
            continue
        out += conn.send(answer)
        if conn.state is State.CLOSED:
            wire.write(out)
            await wire.drain()
            return
        if isinstance(event, ev.StartTls) and answer.code == 220:
            # The core has just dropped everything buffered after STARTTLS; the wire
            # drops what it has read ahead, then the handshake starts.
            wire.write(out)
            out = bytearray()
            await wire.drain()
            session.tls_started(await wire.begin_tls())
            conn.caps = session.caps
            conn.authenticated = False
