"""Command grammar: one received command line -> a `Command` event or `Invalid`.

Owns: RFC 5321 section 4.1 command syntax (verbs, Path with source routes accepted and
ignored, `<Postmaster>`, the null reverse-path), ESMTP parameter syntax and the checks of
each parameter against what was advertised (RFC 1870, 6152, 6531, 3461, 4954), and the
replies for each kind of syntax error. Does not own command sequencing (`server.py`) or
any policy decision on valid commands.

Never raises for peer input: every mistake becomes `Invalid(reply)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from posthorn.address import Address, AddressError, is_domain
from posthorn.smtp import xtext
from posthorn.smtp.events import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Etrn,
    Expn,
    Helo,
    Help,
    Invalid,
    Mail,
    MailParams,
    Noop,
    Quit,
    Rcpt,
    RcptParams,
    Rset,
    StartTls,
    Turn,
    Vrfy,
)
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply

__all__ = ["ParseContext", "parse_command", "parse_path"]


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What the grammar needs to know about the session."""

    caps: Capabilities
    esmtp: bool = False  # the client said EHLO, so ESMTP parameters may appear
    utf8: bool = False  # the transaction's MAIL carried SMTPUTF8


def _syntax(usage: str) -> Invalid:
    # RFC 5321 section 4.2.2: 501 for syntax errors in parameters or arguments.
    return Invalid(Reply(501, "5.5.4", (f"Syntax: {usage}",)))


def _bad(code: int, esc: str, text: str) -> Invalid:
    return Invalid(Reply(code, esc, (text,)))


UNRECOGNIZED = Reply(500, "5.5.1", ("Command unrecognized",))
_PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# RFC 5321 section 4.1.2: esmtp-value = 1*(%d33-60 / %d62-126); RFC 6531 adds UTF-8.
_PARAM_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e]+\Z")
_PARAM_VALUE_UTF8 = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+\Z")
_FROM = re.compile(r"FROM:\s*", re.IGNORECASE)
_TO = re.compile(r"TO:\s*", re.IGNORECASE)
_ADL = re.compile(r"@[^,:]+(?:,@[^,:]+)*:")


def _split_path(text: str) -> tuple[str, str] | None:
    """Split '<...> rest' at the closing bracket, minding quoted strings."""
    if not text.startswith("<"):
        return None
    quoted = False
    i = 1
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return text[1:i], text[i + 1 :]
        i += 1
    return None


def parse_path(inner: str, *, utf8: bool) -> Address:
    """Parse the inside of a Path: an optional source route, then a Mailbox.

    RFC 5321 section 4.1.2 and appendix C: the source route (`@a,@b:`) is accepted and
    ignored; so is one trailing dot after the domain. Raises AddressError.
    """
    route = _ADL.match(inner)
    if route is not None:
        inner = inner[route.end() :]
    if inner.endswith(".") and not inner.endswith("@."):
        # A trailing dot (an absolute DNS name) names the same domain: accept it and drop
        # it, as Postfix does, so that relay checks and routing see one form only.
        inner = inner[:-1]
    return Address.parse(inner, utf8=utf8)


def _parse_params(words: list[str], utf8: bool) -> dict[str, str | None] | Invalid:
    params: dict[str, str | None] = {}
    value_re = _PARAM_VALUE_UTF8 if utf8 else _PARAM_VALUE
    for word in words:
        key, eq, value = word.partition("=")
        if not _PARAM_KEY.match(key) or (eq and not value_re.match(value)):
            return _bad(501, "5.5.4", f"Invalid parameter syntax: {word[:40]}")
        key = key.upper()
        if key in params:
            return _bad(501, "5.5.4", f"Duplicate parameter {key}")
        params[key] = value if eq else None
    return params


def _unsupported(key: str) -> Invalid:
    # RFC 5321 section 4.1.1.11: 555 when a parameter is not recognized.
    return _bad(555, "5.5.4", f"Unsupported parameter {key}")


def _mail_params(raw: dict[str, str | None], ctx: ParseContext) -> MailParams | Invalid:
    caps = ctx.caps
    size: int | None = None
    body = ret = envid = auth = None
    smtputf8 = False
    for key, value in raw.items():
        if key == "SIZE" and caps.size is not None:
            if value is None or not value.isdigit() or len(value) > 20:
                return _syntax("SIZE=<number of octets>")
            size = int(value)
            # RFC 1870 section 6.3: refuse at MAIL time when the declared size is too big.
            if caps.size and size > caps.size:
                return _bad(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif key == "BODY" and caps.eightbitmime:
            body = (value or "").upper()
            if body == "BINARYMIME" and not caps.binarymime:
                return _unsupported("BODY=BINARYMIME")
            if body not in ("7BIT", "8BITMIME", "BINARYMIME"):
                return _syntax("BODY=7BIT|8BITMIME")
        elif key == "SMTPUTF8" and caps.smtputf8:
            if value is not None:
                return _syntax("SMTPUTF8 takes no value")
            smtputf8 = True
        elif key == "RET" and caps.dsn:
            ret = (value or "").upper()
            if ret not in ("FULL", "HDRS"):
                return _syntax("RET=FULL|HDRS")
        elif key == "ENVID" and caps.dsn:
            try:
                envid = xtext.decode(value or "")
            except ValueError:
                return _syntax("ENVID=<xtext>")
            # RFC 3461 section 4.4: at most 100 characters.
            if not envid or len(value or "") > 100:
                return _syntax("ENVID=<xtext of at most 100 characters>")
        elif key == "AUTH" and caps.auth:
            try:
                auth = xtext.decode(value or "")
            except ValueError:
                return _syntax("AUTH=<xtext mailbox>")
        else:
            return _unsupported(key)
    return MailParams(size, body, smtputf8, ret, envid, auth)


_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def _rcpt_params(raw: dict[str, str | None], ctx: ParseContext) -> RcptParams | Invalid:
    notify: frozenset[str] | None = None
    orcpt: str | None = None
    for key, value in raw.items():
        if key == "NOTIFY" and ctx.caps.dsn:
            words = frozenset((value or "").upper().split(","))
            # RFC 3461 section 4.1: NEVER, or any combination of the other three.
            if not (words == {"NEVER"} or (words and words <= _NOTIFY_WORDS)):
                return _syntax("NOTIFY=NEVER|SUCCESS,FAILURE,DELAY")
            notify = words
        elif key == "ORCPT" and ctx.caps.dsn:
            addr_type, semi, addr = (value or "").partition(";")
            if not semi or not addr_type or not addr:
                return _syntax("ORCPT=addr-type;xtext")
            try:
                orcpt = f"{addr_type};{xtext.decode(addr)}"
            except ValueError:
                return _syntax("ORCPT=addr-type;xtext")
        else:
            return _unsupported(key)
    return RcptParams(notify, orcpt)


def _mail(verb: str) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        usage = f"{verb} FROM:<address>"
        prefix = _FROM.match(arg)
        split = _split_path(arg[prefix.end() :]) if prefix else None
        if split is None:
            return _syntax(usage)
        inner, rest = split
        raw = _parse_params(rest.split(), utf8=True) if rest.strip() else {}
        if isinstance(raw, Invalid):
            return raw
        if raw and not ctx.esmtp:
            return _bad(555, "5.5.4", "Parameters need EHLO")
        params = _mail_params(raw, ctx)
        if isinstance(params, Invalid):
            return params
        if not inner:
            return Mail(None, params, verb)
        try:
            sender = parse_path(inner, utf8=True)
        except AddressError as exc:
            return _bad(501, "5.1.7", f"Bad sender address syntax: {exc}")
        if sender.needs_smtputf8 and not params.smtputf8:
            # RFC 6531 section 3.5: non-ASCII address without SMTPUTF8.
            return _bad(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
        return Mail(sender, params, verb)

    return parse


def _rcpt(arg: str, ctx: ParseContext) -> Command | Invalid:
    prefix = _TO.match(arg)
    split = _split_path(arg[prefix.end() :]) if prefix else None
    if split is None:
        return _syntax("RCPT TO:<address>")
    inner, rest = split
    raw = _parse_params(rest.split(), utf8=ctx.utf8) if rest.strip() else {}
    if isinstance(raw, Invalid):
        return raw
    if raw and not ctx.esmtp:
        return _bad(555, "5.5.4", "Parameters need EHLO")
    params = _rcpt_params(raw, ctx)
    if isinstance(params, Invalid):
        return params
    # RFC 5321 section 4.1.1.3: "Postmaster" with no domain must be accepted.
    if inner.lower() == "postmaster":
        return Rcpt(Address("Postmaster", ""), params)
    try:
        recipient = parse_path(inner, utf8=True)
    except AddressError as exc:
        return _bad(501, "5.1.3", f"Bad recipient address syntax: {exc}")
    if recipient.needs_smtputf8 and not ctx.utf8:
        return _bad(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
    return Rcpt(recipient, params)


def _hello(verb: str) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        domain = arg.strip()
        if not domain or " " in domain:
            return _syntax(f"{verb} hostname")
        if not domain.isascii() and not is_domain(domain, utf8=True):
            return _syntax(f"{verb} hostname")
        return Ehlo(domain) if verb == "EHLO" else Helo(domain)

    return parse


def _no_args(verb: str, command: Command) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        return _syntax(verb) if arg.strip() else command

    return parse


def _required(verb: str, make: Callable[[str], Command]) -> Callable[..., Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        arg = arg.strip()
        return make(arg) if arg else _syntax(f"{verb} <argument>")

    return parse


def _bdat(arg: str, ctx: ParseContext) -> Command | Invalid:
    words = arg.split()
    if not 1 <= len(words) <= 2 or not words[0].isdigit() or len(words[0]) > 20:
        return _syntax("BDAT chunk-size [LAST]")
    if len(words) == 2 and words[1].upper() != "LAST":
        return _syntax("BDAT chunk-size [LAST]")
    return Bdat(int(words[0]), len(words) == 2)


def _auth(arg: str, ctx: ParseContext) -> Command | Invalid:
    words = arg.split()
    if not 1 <= len(words) <= 2:
        return _syntax("AUTH mechanism [initial-response]")
    return Auth(words[0].upper(), words[1] if len(words) == 2 else None)


_PARSERS: dict[str, Callable[[str, ParseContext], Command | Invalid]] = {
    "HELO": _hello("HELO"),
    "EHLO": _hello("EHLO"),
    "MAIL": _mail("MAIL"),
    "SEND": _mail("SEND"),
    "SOML": _mail("SOML"),
    "SAML": _mail("SAML"),
    "RCPT": _rcpt,
    "DATA": _no_args("DATA", Data()),
    "BDAT": _bdat,
    "RSET": _no_args("RSET", Rset()),
    "NOOP": lambda arg, ctx: Noop(arg.strip()),
    "QUIT": _no_args("QUIT", Quit()),
    "HELP": lambda arg, ctx: Help(arg.strip()),
    "VRFY": _required("VRFY", Vrfy),
    "EXPN": _required("EXPN", Expn),
    "TURN": _no_args("TURN", Turn()),
    "STARTTLS": _no_args("STARTTLS", StartTls()),
    "AUTH": _auth,
    "ETRN": _required("ETRN", Etrn),
}

# Commands whose arguments may carry UTF-8 (RFC 6531 sections 3.3 and 3.7.4).
_UTF8_VERBS = frozenset({"MAIL", "RCPT", "VRFY", "EXPN", "EHLO", "HELO", "SEND", "SOML", "SAML"})


def parse_command(line: bytes, ctx: ParseContext) -> Command | Invalid:
    """Parse one command line (without its CRLF)."""
    if b"\0" in line:
        return _bad(500, "5.5.2", "NUL character in command")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return _bad(500, "5.5.2", "Invalid characters in command")
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    parser = _PARSERS.get(verb)
    if parser is None:
        return Invalid(UNRECOGNIZED)
    if not arg.isascii() and verb not in _UTF8_VERBS:
        return _bad(500, "5.5.2", "8-bit characters in command")
    return parser(arg, ctx)
