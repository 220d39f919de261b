"""Drive the sans-I/O server core in memory with any bytes, as a permissive session would.

The one in-memory driver of the server core: the state machine tests (tests/smtp), the
client core's pairing with the server core, the hypothesis fuzz tests (tests/security)
and the atheris harnesses (fuzz/). Every event is answered with the positive reply a
policy that accepts everything would give (or a refusal, when asked for), and the
core's invariants are checked on the way (AssertionError when one breaks).
"""

from __future__ import annotations

from collections.abc import Iterable

from posthorn.smtp import events as ev
from posthorn.smtp.data import ContentLimits
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply
from posthorn.smtp.server import ServerConnection, State

CAPS = Capabilities(
    size=10_000,
    pipelining=True,
    eightbitmime=True,
    smtputf8=True,
    enhancedstatuscodes=True,
    chunking=True,
    dsn=True,
    starttls=True,
    auth=("PLAIN", "LOGIN"),
    etrn=True,
    help=True,
)

GREETING = Reply(220, None, ("mx.test ESMTP",))

# What a permissive policy answers: the reply for each kind of event.
POSITIVE: dict[type, Reply] = {
    ev.Helo: Reply(250, None, ("mx.test",)),
    ev.Ehlo: Reply(250, None, ("mx.test", "PIPELINING")),
    ev.Mail: Reply(250, "2.1.0", ("Ok",)),
    ev.Rcpt: Reply(250, "2.1.5", ("Ok",)),
    ev.Data: Reply(354, None, ("Go ahead",)),
    ev.EndOfMessage: Reply(250, "2.0.0", ("queued",)),
    ev.ChunkReceived: Reply(250, "2.0.0", ("chunk",)),
    ev.Rset: Reply(250, "2.0.0", ("Ok",)),
    ev.Noop: Reply(250, "2.0.0", ("Ok",)),
    ev.Quit: Reply(221, "2.0.0", ("Bye",)),
    ev.Help: Reply(214, "2.0.0", ("help",)),
    ev.Vrfy: Reply(252, "2.0.0", ("maybe",)),
    ev.Expn: Reply(252, "2.0.0", ("maybe",)),
    ev.Turn: Reply(502, "5.5.1", ("no",)),
    ev.StartTls: Reply(220, "2.0.0", ("Ready to start TLS",)),
    ev.Auth: Reply(334, None, ("",)),
    ev.AuthResponse: Reply(235, "2.7.0", ("Authenticated",)),
    ev.Etrn: Reply(250, "2.0.0", ("queued",)),
}
REFUSAL = Reply(550, "5.0.0", ("no",))

# Message content arrives only while a message is being read or just refused.
_CONTENT_STATES = (State.DATA, State.BDAT, State.RCPT, State.SESSION, State.MAIL)


def answer(event: ev.Event, refuse: bool = False) -> Reply:
    """The reply to `event`: the core's own reply for a mistake, else POSITIVE's."""
    if isinstance(event, ev.Invalid):
        return event.reply
    if isinstance(event, ev.EndOfMessage | ev.ChunkReceived) and event.problem is not None:
        return event.problem
    return REFUSAL if refuse else POSITIVE[type(event)]


class Driver:
    """A session that answers every event; records the events, the content and the
    bytes the core sent. `refusals`: for each answered event in turn, refuse it?"""

    def __init__(
        self,
        caps: Capabilities = CAPS,
        limits: ContentLimits | None = None,
        refusals: Iterable[bool] = (),
    ) -> None:
        self.conn = ServerConnection(caps, limits)
        self.out = bytearray(self.conn.send(GREETING))
        self.events: list[ev.Event] = []
        self.content = b""
        self.fed = 0
        self._refusals = iter(refusals)

    def feed(self, data: bytes) -> list[tuple[str, int]]:
        """Feed bytes (b"": the peer closed); (event name, reply code) of each answer."""
        self.conn.receive_data(data)
        self.fed += len(data)
        answered: list[tuple[str, int]] = []
        while self.conn.state is not State.CLOSED:
            event = self.conn.next_event()
            if event is ev.Wait.NEED_DATA or isinstance(event, ev.ConnectionClosed):
                break
            self.events.append(event)
            if isinstance(event, ev.MessageData):
                assert self.conn.state in _CONTENT_STATES
                self.content += event.data
                continue
            before = self.conn.state
            reply = answer(event, next(self._refusals, False))
            self.out += self.conn.send(reply)
            started_tls = (before, self.conn.state) == (State.SESSION, State.READY)
            if isinstance(event, ev.StartTls) and started_tls:
                assert self.conn.buffered == 0  # plaintext after STARTTLS is gone
            answered.append((type(event).__name__, reply.code))
        assert self.conn.buffered <= self.fed
        return answered


def drive(
    chunks: Iterable[bytes], refusals: Iterable[bool] = (), limits: ContentLimits | None = None
) -> tuple[ServerConnection, list[ev.Event]]:
    """Feed every chunk, then the end of the stream; return the connection and the
    events. Raises AssertionError when one of the core's invariants breaks."""
    driver = Driver(limits=limits, refusals=refusals)
    for chunk in [*chunks, b""]:
        driver.feed(chunk)
        if driver.conn.state is State.CLOSED:
            assert isinstance(driver.conn.next_event(), ev.ConnectionClosed)
            break
    return driver.conn, driver.events
