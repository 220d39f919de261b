"""Drive the sans-I/O server core in memory with any bytes: the shared part of the
hypothesis fuzz tests (tests/security) and the atheris harnesses (fuzz/)."""

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

# What a permissive policy answers: the positive reply for each kind of event.
POSITIVE: dict[type, Reply] = {
    ev.Helo: Reply(250, None, ("ok",)),
    ev.Ehlo: Reply(250, None, ("ok", "PIPELINING")),
    ev.Mail: Reply(250, "2.1.0", ("Ok",)),
    ev.Rcpt: Reply(250, "2.1.5", ("Ok",)),
    ev.Data: Reply(354, None, ("go",)),
    ev.EndOfMessage: Reply(250, "2.0.0", ("queued",)),
    ev.ChunkReceived: Reply(250, "2.0.0", ("chunk",)),
    ev.Quit: Reply(221, "2.0.0", ("Bye",)),
    ev.StartTls: Reply(220, "2.0.0", ("Ready",)),
    ev.Auth: Reply(334, None, ("",)),
    ev.AuthResponse: Reply(235, "2.7.0", ("ok",)),
}
REFUSAL = Reply(550, "5.0.0", ("no",))
OK = Reply(250, "2.0.0", ("Ok",))


def answer(event: ev.Event, refuse: bool) -> Reply:
    if isinstance(event, ev.Invalid):
        return event.reply
    if isinstance(event, ev.EndOfMessage) and event.problem is not None:
        return event.problem
    if isinstance(event, ev.ChunkReceived) and event.problem is not None:
        return event.problem
    return REFUSAL if refuse else POSITIVE.get(type(event), OK)


def drive(
    chunks: Iterable[bytes], refusals: Iterable[bool] = (), limits: ContentLimits | None = None
) -> tuple[ServerConnection, list[ev.Event]]:
    """Feed every chunk, answering every event; return the connection and the events.

    Checks the core's invariants on the way (AssertionError when one breaks).
    """
    conn = ServerConnection(CAPS, limits or ContentLimits(max_size=10_000))
    conn.send(Reply(220, None, ("mx.test ESMTP",)))
    refuse = iter(refusals)
    events: list[ev.Event] = []
    fed = 0
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        fed += len(chunk)
        while True:
            event = conn.next_event()
            if event is ev.Wait.NEED_DATA or isinstance(event, ev.ConnectionClosed):
                break
            events.append(event)
            if isinstance(event, ev.MessageData):
                assert conn.state in (
                    State.DATA,
                    State.BDAT,
                    State.RCPT,
                    State.SESSION,
                    State.MAIL,
                )
                continue
            before = conn.state
            conn.send(answer(event, next(refuse, False)))
            if (
                isinstance(event, ev.StartTls)
                and conn.state is State.READY
                and before is State.SESSION
            ):
                assert conn.buffered == 0  # plaintext after STARTTLS is gone
            assert isinstance(conn.state, State)
        assert conn.buffered <= fed
        if conn.state is State.CLOSED:
            assert isinstance(conn.next_event(), ev.ConnectionClosed)
            break
    return conn, events
