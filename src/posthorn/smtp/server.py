"""The server side of SMTP as a state machine with no I/O (h11's shape, SMTP's nouns).

Owns: the receive buffer, cutting it into events (commands, message content, ends of
messages), the command sequencing rules of RFC 5321 sections 3 and 4.1.4 as a table
(`ALLOWED`), and the state changes that happen when a reply is sent. Does not own any
decision about a valid command: whether a sender, recipient or message is accepted is the
driver's, given back as the `Reply` it sends.

Use: `receive_data(bytes)` (b"" when the peer closed), then `next_event()` until it
returns `Wait.NEED_DATA`; every command, `Invalid`, `ChunkReceived` and `EndOfMessage`
event must be answered with `send(reply)` before the next `next_event()`; `MessageData`
needs no answer. Peer mistakes are `Invalid` events, never exceptions. Calling the
methods out of order is a bug in the driver and raises `RuntimeError`.
"""

from __future__ import annotations

import enum

from posthorn.smtp.commands import ParseContext, parse_command
from posthorn.smtp.data import ChunkReader, ContentChecker, ContentLimits, DataReader
from posthorn.smtp.events import (
    Auth,
    AuthResponse,
    Bdat,
    ChunkReceived,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Etrn,
    Event,
    Expn,
    Helo,
    Help,
    Invalid,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Turn,
    Vrfy,
    Wait,
)
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.lines import LineReader, TooLong
from posthorn.smtp.reply import Reply

__all__ = ["ALLOWED", "ServerConnection", "State"]


class State(enum.Enum):
    GREETING = enum.auto()  # connected; the greeting is not sent yet
    REFUSED = enum.auto()  # greeted with 554: only QUIT (RFC 5321 section 3.1)
    READY = enum.auto()  # greeted; waiting for HELO/EHLO
    SESSION = enum.auto()  # HELO/EHLO accepted; no transaction
    MAIL = enum.auto()  # MAIL accepted; need RCPT
    RCPT = enum.auto()  # at least one RCPT accepted
    DATA = enum.auto()  # 354 sent; reading the message
    BDAT = enum.auto()  # between BDAT chunks of one message (RFC 3030)
    AUTH = enum.auto()  # 334 sent; the next line is a SASL response (RFC 4954)
    CLOSED = enum.auto()  # 221 or 421 sent; nothing more


# RFC 5321 section 4.1.4: NOOP, HELP, EXPN, VRFY and RSET may be used at any time.
_ANYTIME: frozenset[type] = frozenset({Noop, Rset, Quit, Help, Vrfy, Expn})

# Read it as the protocol: the commands each state accepts.
ALLOWED: dict[State, frozenset[type]] = {
    State.REFUSED: frozenset({Quit}),
    State.READY: _ANYTIME | {Helo, Ehlo},
    State.SESSION: _ANYTIME | {Helo, Ehlo, Mail, StartTls, Auth, Etrn, Turn},
    State.MAIL: _ANYTIME | {Helo, Ehlo, Rcpt},
    State.RCPT: _ANYTIME | {Helo, Ehlo, Rcpt, Data, Bdat},
    State.BDAT: frozenset({Bdat, Rset, Noop, Quit}),
}

# The state a positive (2xx/3xx) reply to each command leads to; None: unchanged.
_AFTER_POSITIVE: dict[type, State | None] = {
    Helo: State.SESSION,
    Ehlo: State.SESSION,
    Mail: State.MAIL,
    Rcpt: State.RCPT,
    Data: State.DATA,
    Quit: State.CLOSED,
    StartTls: State.READY,
    Auth: State.SESSION,
    AuthResponse: State.SESSION,
    EndOfMessage: State.SESSION,
    ChunkReceived: State.BDAT,
}

# Commands of extensions: refused with 502 unless advertised, and only after EHLO.
_EXTENSION_COMMANDS: dict[type, str] = {
    StartTls: "starttls",
    Auth: "auth",
    Bdat: "chunking",
    Etrn: "etrn",
}

_AUTH_LINE_LIMIT = 12288  # RFC 4954 section 4: AUTH lines may be this long


def _sequence_error(state: State, command: object) -> Reply:
    """503 with a hint of what was expected (RFC 5321 section 4.1.4)."""
    if state is State.READY:
        hint = "send HELO/EHLO first"
    elif isinstance(command, Mail):
        hint = "nested MAIL command"
    elif isinstance(command, Rcpt):
        hint = "need MAIL command"
    elif isinstance(command, Data | Bdat):
        hint = "need RCPT command" if state is not State.BDAT else "BDAT transaction in progress"
    elif state in (State.MAIL, State.RCPT, State.BDAT):
        hint = "MAIL transaction in progress"
    else:
        hint = "bad sequence of commands"
    return Reply(503, "5.5.1", (f"Error: {hint}",))


class ServerConnection:
    """One server-side SMTP connection's protocol state."""

    def __init__(
        self,
        caps: Capabilities,
        limits: ContentLimits | None = None,
        *,
        max_command_line: int = 512,
    ) -> None:
        self.caps = caps
        self.limits = limits or ContentLimits(max_size=caps.size or 0)
        self.max_command_line = max_command_line
        self.state = State.GREETING
        self.esmtp = False  # EHLO (not HELO) was accepted
        self.utf8 = False  # the current transaction declared SMTPUTF8
        self.tls = False  # STARTTLS completed (set by the 220 reply)
        self.authenticated = False
        self._buffer = bytearray()
        self._lines = LineReader(self._buffer, max(max_command_line, _AUTH_LINE_LIMIT))
        self._reader: DataReader | ChunkReader | None = None
        self._checker: ContentChecker | None = None  # shared by the BDAT chunks of one message
        self._bdat_valid = False
        self._awaiting: object | None = None  # the event that needs a reply
        self._eof = False

    # -- input -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; b"" means the peer closed its side."""
        if not data:
            self._eof = True
        elif self.state is not State.CLOSED:
            self._buffer += data

    @property
    def buffered(self) -> int:
        """Octets received and not yet consumed (for pipelining-aware flushing)."""
        return len(self._buffer)

    def next_event(self) -> Event | Wait:
        """The next event, or Wait.NEED_DATA when no complete one is buffered."""
        if self._awaiting is not None:
            raise RuntimeError(f"reply to {self._awaiting!r} first")
        if self.state is State.CLOSED:
            return ConnectionClosed()
        if self._reader is not None:
            return self._next_content()
        line = self._lines.next_line()
        if line is None:
            return ConnectionClosed() if self._eof else Wait.NEED_DATA
        event = self._interpret(line)
        if isinstance(event, Bdat):
            self._start_chunk(event)
            return self.next_event()
        self._awaiting = event
        return event

    def _next_content(self) -> Event | Wait:
        assert self._reader is not None
        event = self._reader.next_event()
        if event is None:
            return ConnectionClosed() if self._eof else Wait.NEED_DATA
        if isinstance(event, EndOfMessage | ChunkReceived):
            self._reader = None
            self._awaiting = event
        return event

    def _interpret(self, line: bytes | TooLong) -> Event:
        if line is TooLong.LINE:
            return Invalid(Reply(500, "5.5.2", ("Error: line too long",)))
        assert isinstance(line, bytes)
        if self.state is State.AUTH:
            return AuthResponse(line.decode("ascii", "replace"))
        if len(line) + 2 > self.max_command_line and line[:5].upper() != b"AUTH ":
            # RFC 5321 section 4.5.3.1.4: command lines are limited (512 by default).
            return Invalid(Reply(500, "5.5.2", ("Error: line too long",)))
        if self.state is State.GREETING:
            raise RuntimeError("send the greeting before reading commands")
        command = parse_command(line, ParseContext(self.caps, self.esmtp, self.utf8))
        if isinstance(command, Invalid):
            return command
        ext = _EXTENSION_COMMANDS.get(type(command))
        if ext is not None and not getattr(self.caps, ext):
            if isinstance(command, Auth) and self.caps.starttls and not self.tls:
                # AUTH is offered only under TLS here (RFC 4954 section 4, RFC 3207).
                return Invalid(Reply(530, "5.7.0", ("Must issue a STARTTLS command first",)))
            return Invalid(Reply(502, "5.5.1", ("Error: command not implemented",)))
        if type(command) not in ALLOWED.get(self.state, frozenset()):
            if isinstance(command, Bdat):
                return Bdat(command.size, command.last)  # read and refuse its chunk
            return Invalid(_sequence_error(self.state, command))
        if ext is not None and not self.esmtp:
            return Invalid(Reply(503, "5.5.1", ("Error: send EHLO first",)))
        if isinstance(command, StartTls) and self.tls:
            return Invalid(Reply(503, "5.5.1", ("Error: TLS already active",)))
        if isinstance(command, Auth) and self.authenticated:
            # RFC 4954 section 4: AUTH is not permitted once authenticated.
            return Invalid(Reply(503, "5.5.1", ("Error: already authenticated",)))
        return command

    def _start_chunk(self, bdat: Bdat) -> None:
        """Read a BDAT chunk; one that is out of sequence is read and refused (RFC 3030)."""
        valid = self.state in (State.RCPT, State.BDAT)
        if self._checker is None or not valid:
            self._checker = ContentChecker(self.limits)
        checker = self._checker
        if not valid:
            checker.problem = _sequence_error(self.state, bdat)
        self._bdat_valid = valid
        self._reader = ChunkReader(self._buffer, bdat.size, bdat.last, checker)

    # -- output ----------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """Record that `reply` answers the pending event; return its bytes to write."""
        event, self._awaiting = self._awaiting, None
        if reply.code == 421:
            # RFC 5321 section 3.8: 421 means the server is closing the connection.
            self.state = State.CLOSED
        elif self.state is State.GREETING:
            self.state = {220: State.READY, 554: State.REFUSED}.get(reply.code, State.CLOSED)
        elif event is None:
            raise RuntimeError(f"no event to answer with {reply}")
        else:
            self._transition(event, reply)
        return reply.to_bytes()

    def _transition(self, event: object, reply: Reply) -> None:
        if isinstance(event, EndOfMessage | ChunkReceived):
            self._end_of_content(event, reply)
            return
        if isinstance(event, Auth | AuthResponse) and reply.code == 334:
            self.state = State.AUTH
            return
        if not reply.is_positive:
            if self.state is State.AUTH:
                self.state = State.SESSION
            return
        if isinstance(event, Rset):
            self._reset_transaction()
            self.state = State.SESSION if self.state is not State.READY else State.READY
            return
        after = _AFTER_POSITIVE.get(type(event))
        if after is None:
            return
        if isinstance(event, Helo | Ehlo):
            self._reset_transaction()
            self.esmtp = isinstance(event, Ehlo)
        elif isinstance(event, Mail):
            self.utf8 = event.params.smtputf8
        elif isinstance(event, Data):
            self._reader = DataReader(self._buffer, self.limits)
        elif isinstance(event, StartTls):
            # RFC 3207 section 4.2: forget everything, including any plaintext pipelined
            # after STARTTLS (the CVE-2011-0411 command injection).
            del self._buffer[:]
            self._lines.reset()
            self._reset_transaction()
            self.tls = True
            self.esmtp = False
        elif isinstance(event, Auth | AuthResponse):
            self.authenticated = True
        self.state = after

    def _end_of_content(self, event: EndOfMessage | ChunkReceived, reply: Reply) -> None:
        if self.state is not State.DATA and not self._bdat_valid:
            return  # a refused out-of-sequence chunk changes nothing
        if isinstance(event, ChunkReceived) and reply.is_positive and event.problem is None:
            self.state = State.BDAT
            return
        self._reset_transaction()
        self.state = State.SESSION

    def _reset_transaction(self) -> None:
        self.utf8 = False
        self._checker = None
        self._bdat_valid = False
        self._reader = None
