"""The client side of SMTP with no I/O: commands out, replies in, a FIFO for pipelining.

Owns: encoding commands, message content (dot-stuffed DATA or BDAT chunks), assembling
multi-line replies (RFC 5321 section 4.2.1) and pairing each reply with the command it
answers, in order, so that pipelined commands (RFC 2920) are matched correctly. Does not
own the dialogue (which command to send next, what a reply means for delivery): that is
`posthorn.delivery.remote` and the user agent.

Speaks LMTP (RFC 2033) too: the same commands with LHLO for EHLO, and one reply per
accepted recipient after the final dot (`send_message(..., replies=n)`).

Also owns the wire form of MAIL and RCPT with their ESMTP parameters (`mail_command`,
`rcpt_command`: SIZE, BODY, SMTPUTF8, and RFC 3461's RET, ENVID, NOTIFY, ORCPT in xtext)
and forgetting plaintext buffered before a STARTTLS handshake (`start_tls`).

A peer's mistake (a line that is not a reply, a multi-line reply whose codes differ, a
reply nobody asked for) comes out of `next_reply` as a `BadReply` value, never an
exception. Using the object out of order is a bug and raises `RuntimeError`.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass

from posthorn.address import Address
from posthorn.smtp import xtext
from posthorn.smtp.data import dot_stuff
from posthorn.smtp.lines import LineReader, TooLong
from posthorn.smtp.reply import Reply, ReplyError, parse_reply_line, split_esc

__all__ = [
    "BadReply",
    "ClientConnection",
    "ClientWait",
    "Closed",
    "MailOptions",
    "Received",
    "mail_command",
    "rcpt_command",
]

_REPLY_LINE_LIMIT = 8192  # RFC 5321 allows 512; real servers send longer lines
_MAX_REPLY_LINES = 1000


@dataclass(frozen=True, slots=True)
class Received:
    """A complete reply and the label of the command (or "greeting") it answers."""

    label: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class BadReply:
    """The peer sent something that is not a valid reply; the connection is unusable."""

    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the connection; `pending` labels got no reply."""

    pending: tuple[str, ...]


class ClientWait(enum.Enum):
    NEED_DATA = enum.auto()


@dataclass(frozen=True, slots=True)
class MailOptions:
    """The ESMTP parameters of one MAIL command; None or False leaves one out."""

    size: int | None = None  # RFC 1870
    body: str | None = None  # RFC 6152: "8BITMIME" or "7BIT"
    smtputf8: bool = False  # RFC 6531
    ret: str | None = None  # RFC 3461 section 4.3: "FULL" | "HDRS"
    envid: str | None = None  # RFC 3461 section 4.4, sent as xtext


def mail_command(sender: Address | None, options: MailOptions = MailOptions()) -> str:
    """'MAIL FROM:<alice@example.org> SIZE=123 BODY=8BITMIME' (null sender: '<>')."""
    words = [f"MAIL FROM:<{'' if sender is None else sender}>"]
    if options.size is not None:
        words.append(f"SIZE={options.size}")
    if options.body:
        words.append(f"BODY={options.body}")
    if options.smtputf8:
        words.append("SMTPUTF8")
    if options.ret:
        words.append(f"RET={options.ret}")
    if options.envid:
        words.append(f"ENVID={xtext.encode(options.envid)}")
    return " ".join(words)


def rcpt_command(
    recipient: Address, notify: frozenset[str] | None = None, orcpt: str | None = None
) -> str:
    """'RCPT TO:<bob@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.org'."""
    words = [f"RCPT TO:<{recipient}>"]
    if notify:
        # RFC 3461 section 4.1: NEVER alone, or a comma-separated list.
        order = ("NEVER", "SUCCESS", "FAILURE", "DELAY")
        words.append("NOTIFY=" + ",".join(w for w in order if w in notify))
    if orcpt:
        addr_type, _, original = orcpt.partition(";")
        words.append(f"ORCPT={addr_type};{xtext.encode(original)}")
    return " ".join(words)


class ClientConnection:
    """One client-side SMTP connection's protocol state."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines = LineReader(self._buffer, _REPLY_LINE_LIMIT)
        self._expected: collections.deque[str] = collections.deque(["greeting"])
        self._partial: list[str] = []
        self._partial_code = 0
        self._eof = False
        self.broken: str | None = None

    @property
    def pending(self) -> int:
        """How many commands still wait for their reply."""
        return len(self._expected)

    # -- output ----------------------------------------------------------------------

    def send(self, command: str, label: str | None = None) -> bytes:
        """Encode one command line; its reply will come out labelled `label` (or the verb)."""
        if "\r" in command or "\n" in command:
            raise RuntimeError("a command is one line")
        self._expected.append(label or command.split(" ", 1)[0].upper())
        return command.encode("utf-8") + b"\r\n"

    def send_message(self, message: bytes, replies: int = 1) -> bytes:
        """Encode the content that follows a 354: dot-stuffed, CRLF.CRLF at the end.

        `replies`: how many replies the final dot earns; one in SMTP, one per accepted
        recipient in LMTP (RFC 2033 section 4.2).
        """
        if replies < 1:
            raise RuntimeError("the final dot earns at least one reply")
        self._expected.extend(["end-of-data"] * replies)
        return dot_stuff(message)

    def send_chunk(self, data: bytes, *, last: bool) -> bytes:
        """Encode one BDAT chunk (RFC 3030): the command and the octets together."""
        header = f"BDAT {len(data)}{' LAST' if last else ''}"
        self._expected.append("BDAT LAST" if last else "BDAT")
        return header.encode("ascii") + b"\r\n" + data

    def start_tls(self) -> None:
        """The peer said 220 to STARTTLS: forget any plaintext it sent after that reply.

        RFC 3207 section 4.2 asks both sides to discard what they knew before TLS; bytes
        that arrived in plaintext after the 220 could be an attacker's injected replies
        (the client side of CVE-2011-0411).
        """
        if self._expected or self._partial:
            raise RuntimeError("STARTTLS with replies still pending")
        del self._buffer[:]
        self._lines.reset()

    # -- input -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; b"" means the peer closed."""
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_reply(self) -> Received | BadReply | Closed | ClientWait:
        """The next complete reply, or what went wrong, or NEED_DATA."""
        if self.broken is not None:
            return BadReply(self.broken)
        while True:
            line = self._lines.next_line()
            if line is None:
                if self._eof:
                    return Closed(tuple(self._expected))
                return ClientWait.NEED_DATA
            result = self._take(line)
            if result is not None:
                return result

    def _take(self, line: bytes | TooLong) -> Received | BadReply | None:
        if line is TooLong.LINE:
            return self._break("reply line too long")
        assert isinstance(line, bytes)
        try:
            code, last, text = parse_reply_line(line)
        except ReplyError as exc:
            return self._break(str(exc))
        if self._partial and code != self._partial_code:
            return self._break(f"multi-line reply changed code {self._partial_code} -> {code}")
        self._partial.append(text)
        self._partial_code = code
        if len(self._partial) > _MAX_REPLY_LINES:
            return self._break("reply has too many lines")
        if not last:
            return None
        lines, self._partial = self._partial, []
        if not self._expected:
            return self._break(f"unexpected reply {code}")
        esc, _ = split_esc(code, lines[0])
        texts = tuple(split_esc(code, t)[1] if esc else t for t in lines)
        return Received(self._expected.popleft(), Reply(code, esc, texts))

    def _break(self, reason: str) -> BadReply:
        self.broken = reason
        return BadReply(reason)
