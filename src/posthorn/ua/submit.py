"""Submitting a message over SMTP: a small blocking driver for the sans-I/O client core.

Owns: connecting (each address of the server in turn), the submission dialogue
(greeting; EHLO, or HELO when EHLO is refused, RFC 5321 section 3.2; STARTTLS, RFC 3207;
AUTH PLAIN or LOGIN, RFC 4954; MAIL, RCPT, DATA, QUIT, pipelined when the server offers
PIPELINING, RFC 2920), the transcript that `-v` shows (client lines prefixed `>>> `, the
server's lines exactly as received, `Connecting to ...` / `Trying ... connected.`) and
the result as a value. Passwords never reach the transcript. Does not own framing or
reply parsing (`posthorn.smtp.client`) or what the user sees (`shell.py`).

Never raises for network, TLS or protocol trouble: `submit()` returns `Sent` or `NotSent`.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from posthorn.address import Address
from posthorn.smtp.client import ClientConnection
from posthorn.smtp.extensions import Capabilities, parse_ehlo
from posthorn.smtp.reply import Reply
from posthorn.ua.wire import Show, Wire, WireError, connect

__all__ = [
    "Credentials",
    "NotSent",
    "Refusal",
    "Result",
    "Sent",
    "SubmitOptions",
    "TlsMode",
    "submit",
]


class TlsMode(enum.Enum):
    AUTO = "auto"  # STARTTLS when the server offers it
    REQUIRE = "require"  # refuse to send without TLS
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    host: str
    port: int
    helo: str
    tls: TlsMode = TlsMode.AUTO
    tls_verify: bool = True
    ca_file: str = ""
    credentials: Credentials | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Refusal:
    recipient: Address
    reply: Reply


@dataclass(frozen=True, slots=True)
class Sent:
    """The server took responsibility for the message (for all but `refused`)."""

    reply: Reply
    refused: tuple[Refusal, ...] = ()


@dataclass(frozen=True, slots=True)
class NotSent:
    """Nothing was sent. `temporary`: trying again later may work (4xx, network)."""

    reason: str
    temporary: bool
    reply: Reply | None = None
    refused: tuple[Refusal, ...] = ()


Result = Sent | NotSent


class _Abort(Exception):
    """Ends the dialogue early; carries the result to return."""

    def __init__(self, result: NotSent) -> None:
        super().__init__(result.reason)
        self.result = result


def _expect(reply: Reply, what: str) -> Reply:
    if not reply.is_positive:
        raise _Abort(NotSent(f"{what} refused: {reply}", reply.is_transient, reply))
    return reply


def _hello(wire: Wire, helo: str) -> Capabilities:
    wire.command(f"EHLO {helo}")
    reply = wire.reply()
    if reply.code == 250:
        return parse_ehlo(reply.lines)
    # RFC 5321 section 3.2: a server that does not know EHLO still knows HELO.
    wire.command(f"HELO {helo}")
    _expect(wire.reply(), "HELO")
    return Capabilities()


def _tls_context(options: SubmitOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.ca_file or None)
    if not options.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _starttls(wire: Wire, options: SubmitOptions) -> Wire:
    wire.command("STARTTLS")
    _expect(wire.reply(), "STARTTLS")
    wire.conn.start_tls()
    wire.alive = False  # from here on the plaintext session is gone, whatever happens
    try:
        tls = _tls_context(options).wrap_socket(wire.sock, server_hostname=options.host)
    except ssl.SSLCertVerificationError as exc:
        reason = f"TLS certificate of {options.host} not trusted: {exc.verify_message}"
        raise _Abort(NotSent(reason, temporary=False)) from exc
    cipher = tls.cipher()
    wire.show(f"TLS started: {tls.version()} {cipher[0] if cipher else ''}".rstrip())
    return Wire(tls, wire.show, wire.conn)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _auth(wire: Wire, caps: Capabilities, credentials: Credentials, secure: bool) -> None:
    if not secure:
        # RFC 4954 section 4 and RFC 8314: never send a password in the clear.
        reason = "refusing to send the AUTH password without TLS"
        raise _Abort(NotSent(reason, temporary=False))
    if "PLAIN" in caps.auth:
        token = _b64(f"\0{credentials.user}\0{credentials.password}")
        wire.command(f"AUTH PLAIN {token}", "AUTH PLAIN ********")
        reply = wire.reply()
        if reply.code == 334:  # the server wants the response on its own line
            wire.command(token, "********")
            reply = wire.reply()
    elif "LOGIN" in caps.auth:
        wire.command("AUTH LOGIN")
        _expect(wire.reply(), "AUTH LOGIN")
        wire.command(_b64(credentials.user), "********")
        _expect(wire.reply(), "AUTH LOGIN")
        wire.command(_b64(credentials.password), "********")
        reply = wire.reply()
    else:
        offered = " ".join(caps.auth) or "none"
        raise _Abort(NotSent(f"no usable AUTH mechanism (offered: {offered})", False))
    _expect(reply, "AUTH")


def _mail_command(sender: Address | None, caps: Capabilities, size: int, utf8: bool) -> str:
    params = []
    if caps.size is not None:
        params.append(f"SIZE={size}")  # RFC 1870 section 6
    if utf8:
        params.append("SMTPUTF8")  # RFC 6531 section 3.4
    path = "" if sender is None else str(sender)
    return " ".join([f"MAIL FROM:<{path}>", *params])


def _check_content(caps: Capabilities, content: bytes, smtputf8: bool) -> list[str]:
    """Extra MAIL parameters the content needs, or an _Abort when the server lacks them."""
    params = []
    if smtputf8 and not caps.smtputf8:
        reason = "the server does not offer SMTPUTF8, which these addresses need"
        raise _Abort(NotSent(reason, False, Reply(553, "5.6.7", (reason,))))
    if not content.isascii():
        if not caps.eightbitmime:
            reason = "the server does not accept 8-bit content (no 8BITMIME)"
            raise _Abort(NotSent(reason, False, Reply(554, "5.6.3", (reason,))))
        params.append("BODY=8BITMIME")  # RFC 6152 section 3
    return params


def _envelope(
    wire: Wire, caps: Capabilities, mail: str, rcpts: list[str]
) -> tuple[Reply, list[Reply], Reply | None]:
    """MAIL and RCPT (and DATA, when pipelining); the replies in order."""
    if caps.pipelining:
        # RFC 2920 section 3.1: DATA may end the group; its reply comes last.
        wire.commands([mail, *rcpts, "DATA"])
        mail_reply = wire.reply()
        return mail_reply, [wire.reply() for _ in rcpts], wire.reply()
    wire.command(mail)
    mail_reply = wire.reply()
    replies = []
    if mail_reply.is_positive:
        for line in rcpts:
            wire.command(line)
            replies.append(wire.reply())
    return mail_reply, replies, None


def _abort_data(wire: Wire, data_reply: Reply | None, result: NotSent) -> NotSent:
    if data_reply is not None and data_reply.code == 354:
        # RFC 2920 section 3.1: the pipelined DATA was accepted although the transaction
        # failed; end it with an empty message, which the server will refuse.
        wire.message(b"")
        wire.reply()
    return result


def _transaction(
    wire: Wire,
    caps: Capabilities,
    sender: Address | None,
    recipients: Sequence[Address],
    content: bytes,
    smtputf8: bool,
) -> Sent:
    extra = _check_content(caps, content, smtputf8)
    mail = " ".join([_mail_command(sender, caps, len(content), smtputf8), *extra])
    rcpts = [f"RCPT TO:<{r}>" for r in recipients]
    mail_reply, rcpt_replies, data_reply = _envelope(wire, caps, mail, rcpts)
    if not mail_reply.is_positive:
        reason = f"MAIL FROM refused: {mail_reply}"
        result = NotSent(reason, mail_reply.is_transient, mail_reply)
        raise _Abort(_abort_data(wire, data_reply, result))
    refused = tuple(
        Refusal(r, reply)
        for r, reply in zip(recipients, rcpt_replies, strict=True)
        if reply.code >= 400
    )
    if len(refused) == len(recipients):
        temporary = all(r.reply.is_transient for r in refused)
        result = NotSent("all recipients were refused", temporary, None, refused)
        raise _Abort(_abort_data(wire, data_reply, result))
    if data_reply is None:
        wire.command("DATA")
        data_reply = wire.reply()
    if data_reply.code != 354:
        raise _Abort(NotSent(f"DATA refused: {data_reply}", data_reply.is_transient, data_reply))
    wire.message(content)
    final = wire.reply()
    if not final.is_positive:
        raise _Abort(NotSent(f"message refused: {final}", final.is_transient, final, refused))
    return Sent(final, refused)


def _is_loopback(sock: socket.socket) -> bool:
    try:
        return ipaddress.ip_address(sock.getpeername()[0]).is_loopback
    except (OSError, ValueError):
        return False


class _Session:
    """The dialogue on one connection; `wire` changes when STARTTLS succeeds."""

    def __init__(self, sock: socket.socket, options: SubmitOptions, show: Show) -> None:
        self.options = options
        self.wire = Wire(sock, show, ClientConnection())
        self.loopback = _is_loopback(sock)

    def run(
        self, envelope: tuple[Address | None, Sequence[Address]], content: bytes, utf8: bool
    ) -> Sent:
        try:
            sent = self._run(envelope, content, utf8)
            _quit(self.wire)
            return sent
        except (_Abort, WireError):
            if self.wire.alive:
                _quit(self.wire)  # the session itself is healthy: end it politely
            raise
        finally:
            self.wire.sock.close()

    def _run(
        self, envelope: tuple[Address | None, Sequence[Address]], content: bytes, utf8: bool
    ) -> Sent:
        options = self.options
        greeting = self.wire.reply()
        if greeting.code != 220:
            raise _Abort(NotSent(f"server greeting: {greeting}", greeting.is_transient, greeting))
        caps = _hello(self.wire, options.helo)
        secure = False
        if options.tls is not TlsMode.NEVER and caps.starttls:
            self.wire = _starttls(self.wire, options)
            secure = True
            caps = _hello(self.wire, options.helo)
        elif options.tls is TlsMode.REQUIRE:
            raise _Abort(NotSent("the server does not offer STARTTLS (required)", False))
        if options.credentials is not None:
            _auth(self.wire, caps, options.credentials, secure or self.loopback)
        return _transaction(self.wire, caps, *envelope, content, utf8)


def _quit(wire: Wire) -> None:
    """Say goodbye; trouble here changes nothing about the message."""
    try:
        wire.command("QUIT")
        wire.reply()
    except (OSError, WireError):
        pass


def submit(
    options: SubmitOptions,
    sender: Address | None,
    recipients: Sequence[Address],
    content: bytes,
    *,
    smtputf8: bool = False,
    show: Show = lambda line: None,
) -> Result:
    """Submit `content` (CRLF) for `recipients`; `show` receives the transcript lines."""
    try:
        sock = connect(options.host, options.port, options.timeout, show)
        return _Session(sock, options, show).run((sender, recipients), content, smtputf8)
    except _Abort as abort:
        return abort.result
    except WireError as exc:
        return NotSent(str(exc), temporary=True)
    except ssl.SSLError as exc:
        return NotSent(f"TLS failed: {exc.reason or exc}", temporary=True)
    except TimeoutError:
        return NotSent(f"timed out after {options.timeout:g}s waiting for the server", True)
    except OSError as exc:
        return NotSent(f"connection failed: {exc.strerror or exc}", temporary=True)
