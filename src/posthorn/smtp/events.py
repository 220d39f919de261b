"""The events the server core hands to its driver: commands and message data.

Owns: one frozen dataclass per SMTP command (RFC 5321 section 4.1.1 and the extensions
Posthorn speaks), their parameter records, and the non-command events (`MessageData`,
`EndOfMessage`, `ChunkReceived`, `Invalid`, `ConnectionClosed`). Does not own parsing
(`commands.py`) or the rules for when each is allowed (`server.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from posthorn.address import Address
from posthorn.smtp.reply import Reply


@dataclass(frozen=True, slots=True)
class MailParams:
    """ESMTP parameters of MAIL FROM (RFC 1870, 6152, 6531, 3461, 4954)."""

    size: int | None = None
    body: str | None = None  # "7BIT" | "8BITMIME"
    smtputf8: bool = False
    ret: str | None = None  # "FULL" | "HDRS"
    envid: str | None = None  # xtext-decoded
    auth: str | None = None  # the AUTH= mailbox, xtext-decoded ("<>" when unknown)


@dataclass(frozen=True, slots=True)
class RcptParams:
    """ESMTP parameters of RCPT TO (RFC 3461 section 4)."""

    notify: frozenset[str] | None = None  # {"NEVER"} or a subset of SUCCESS/FAILURE/DELAY
    orcpt: str | None = None  # "addr-type;address", xtext-decoded


@dataclass(frozen=True, slots=True)
class Helo:
    domain: str


@dataclass(frozen=True, slots=True)
class Ehlo:
    domain: str


@dataclass(frozen=True, slots=True)
class Mail:
    """MAIL FROM, or one of RFC 821's SEND/SOML/SAML (`verb` says which)."""

    sender: Address | None  # None is the null reverse-path <>
    params: MailParams = field(default_factory=MailParams)
    verb: str = "MAIL"


@dataclass(frozen=True, slots=True)
class Rcpt:
    recipient: Address
    params: RcptParams = field(default_factory=RcptParams)


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Bdat:
    """BDAT header (RFC 3030); its chunk follows as MessageData events."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    text: str = ""


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Expn:
    argument: str


@dataclass(frozen=True, slots=True)
class Turn:
    pass


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH mechanism [initial-response] (RFC 4954 section 4)."""

    mechanism: str
    initial: str | None = None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A client line sent in answer to a 334 challenge."""

    line: str


@dataclass(frozen=True, slots=True)
class Etrn:
    """ETRN node (RFC 1985): `@domain` and `#queue` forms keep their prefix."""

    argument: str


Command = (
    Helo
    | Ehlo
    | Mail
    | Rcpt
    | Data
    | Bdat
    | Rset
    | Noop
    | Quit
    | Help
    | Vrfy
    | Expn
    | Turn
    | StartTls
    | Auth
    | AuthResponse
    | Etrn
)


@dataclass(frozen=True, slots=True)
class MessageData:
    """A piece of message content, already dot-unstuffed (DATA) or raw (BDAT)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message is complete. `problem` is the reply to give instead of accepting it."""

    problem: Reply | None = None


@dataclass(frozen=True, slots=True)
class ChunkReceived:
    """A non-final BDAT chunk was read completely (RFC 3030 section 2)."""

    size: int
    problem: Reply | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """The peer made a mistake; send `reply` and carry on (or close, for 421)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side of the connection."""


class Wait(enum.Enum):
    """No complete event is buffered: feed more bytes with `receive_data`."""

    NEED_DATA = enum.auto()


Event = Command | MessageData | EndOfMessage | ChunkReceived | Invalid | ConnectionClosed
