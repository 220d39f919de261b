"""Submitting a message over SMTP: a small blocking driver for the sans-I/O client core.

Owns: connecting (each address of the server in turn), the submission dialogue up to
the mail transaction (greeting; EHLO, or HELO when EHLO is refused, RFC 5321 section
3.2; STARTTLS, RFC 3207; AUTH PLAIN or LOGIN, RFC 4954) and QUIT, and turning network
and TLS trouble into a `NotSent`. Passwords never reach the transcript that `-v` shows.
Does not own MAIL, RCPT and DATA (`transaction.py`), the transcript's form (`wire.py`),
framing or reply parsing (`posthorn.smtp.client`) or what the user sees (`shell.py`).

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
from posthorn.ua.transaction import Abort, NotSent, Refusal, Result, Sent, expect, transaction
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


def _hello(wire: Wire, helo: str) -> Capabilities:
    wire.command(f"EHLO {helo}")
    reply = wire.reply()
    if reply.code == 250:
        return parse_ehlo(reply.lines)
    # RFC 5321 section 3.2: a server that does not know EHLO still knows HELO.
    wire.command(f"HELO {helo}")
    expect(wire.reply(), "HELO")
    return Capabilities()


def _tls_context(options: SubmitOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.ca_file or None)
    if not options.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _starttls(wire: Wire, options: SubmitOptions) -> Wire:
    wire.command("STARTTLS")
    expect(wire.reply(), "STARTTLS")
    wire.conn.start_tls()
    wire.alive = False  # from here on the plaintext session is gone, whatever happens
    try:
        tls = _tls_context(options).wrap_socket(wire.sock, server_hostname=options.host)
    except ssl.SSLCertVerificationError as exc:
        reason = f"TLS certificate of {options.host} not trusted: {exc.verify_message}"
        raise Abort(NotSent(reason, temporary=False)) from exc
    cipher = tls.cipher()
    wire.show(f"TLS started: {tls.version()} {cipher[0] if cipher else ''}".rstrip())
    return Wire(tls, wire.show, wire.conn)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _auth(wire: Wire, caps: Capabilities, credentials: Credentials, secure: bool) -> None:
    if not secure:
        # RFC 4954 section 4 and RFC 8314: never send a password in the clear.
        reason = "refusing to send the AUTH password without TLS"
        raise Abort(NotSent(reason, temporary=False))
    if "PLAIN" in caps.auth:
        token = _b64(f"\0{credentials.user}\0{credentials.password}")
        wire.command(f"AUTH PLAIN {token}", "AUTH PLAIN ********")
        reply = wire.reply()
        if reply.code == 334:  # the server wants the response on its own line
            wire.command(token, "********")
            reply = wire.reply()
    elif "LOGIN" in caps.auth:
        wire.command("AUTH LOGIN")
        expect(wire.reply(), "AUTH LOGIN")
        wire.command(_b64(credentials.user), "********")
        expect(wire.reply(), "AUTH LOGIN")
        wire.command(_b64(credentials.password), "********")
        reply = wire.reply()
    else:
        offered = " ".join(caps.auth) or "none"
        raise Abort(NotSent(f"no usable AUTH mechanism (offered: {offered})", False))
    expect(reply, "AUTH")


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
        except (Abort, WireError):
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
            raise Abort(NotSent(f"server greeting: {greeting}", greeting.is_transient, greeting))
        caps = _hello(self.wire, options.helo)
        secure = False
        if options.tls is not TlsMode.NEVER and caps.starttls:
            self.wire = _starttls(self.wire, options)
            secure = True
            caps = _hello(self.wire, options.helo)
        elif options.tls is TlsMode.REQUIRE:
            raise Abort(NotSent("the server does not offer STARTTLS (required)", False))
        if options.credentials is not None:
            _auth(self.wire, caps, options.credentials, secure or self.loopback)
        return transaction(self.wire, caps, *envelope, content, utf8)


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
    except Abort as abort:
        return abort.result
    except WireError as exc:
        return NotSent(str(exc), temporary=True)
    except ssl.SSLError as exc:
        return NotSent(f"TLS failed: {exc.reason or exc}", temporary=True)
    except TimeoutError:
        return NotSent(f"timed out after {options.timeout:g}s waiting for the server", True)
    except OSError as exc:
        return NotSent(f"connection failed: {exc.strerror or exc}", temporary=True)
