"""Command grammar: one received command line -> a `Command` event or `Invalid`.

Owns: RFC 5321 section 4.1 command syntax (verbs, Path with source routes accepted and
ignored, `<Postmaster>`, the null reverse-path), where a command may carry UTF-8 (RFC
6531), and the replies for each kind of syntax error. Does not own the ESMTP parameters
(`params.py`), command sequencing (`server.py`) or any policy decision on valid
commands.

Never raises for peer input: every mistake becomes `Invalid(reply)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from posthorn.address import Address, AddressError, is_domain
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
from posthorn.smtp.params import invalid, mail_params, rcpt_params, split_params, syntax_error
from posthorn.smtp.reply import Reply

__all__ = ["ParseContext", "parse_command", "parse_path"]


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What the grammar needs to know about the session."""

    caps: Capabilities
    esmtp: bool = False  # the client said EHLO, so ESMTP parameters may appear
    utf8: bool = False  # the transaction's MAIL carried SMTPUTF8


P = TypeVar("P", MailParams, RcptParams)

UNRECOGNIZED = Reply(500, "5.5.1", ("Command unrecognized",))
_FROM = re.compile(r"FROM:\s*", re.IGNORECASE)
_TO = re.compile(r"TO:\s*", re.IGNORECASE)
_ADL = re.compile(r"@[^,:]+(?:,@[^,:]+)*:")


def _split_path(text: str) -> tuple[str, str] | None:
    """Split '<...> rest' at the closing bracket, minding quoted strings."""
    if not text.startswith("<"):
        return None
    if '"' not in text:  # the common case: no quoted local part to mind
        end = text.find(">")
        return None if end < 0 else (text[1:end], text[end + 1 :])
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


def _path_and_params(
    arg: str,
    prefix: re.Pattern[str],
    usage: str,
    ctx: ParseContext,
    read: Callable[[dict[str, str | None], Capabilities], P | Invalid],
    *,
    utf8: bool,
) -> tuple[str, P] | Invalid:
    """'FROM:<path> params' (or 'TO:...') -> the inside of the path and the parameters,
    read by `read` (`mail_params` or `rcpt_params`)."""
    match = prefix.match(arg)
    split = _split_path(arg[match.end() :]) if match else None
    if split is None:
        return syntax_error(usage)
    inner, rest = split
    raw = split_params(rest, utf8=utf8) if rest.strip() else {}
    if isinstance(raw, Invalid):
        return raw
    if raw and not ctx.esmtp:
        # RFC 5321 section 4.1.1.11: parameters are an extension; without EHLO, 555.
        return invalid(555, "5.5.4", "Parameters need EHLO")
    params = read(raw, ctx.caps)
    if isinstance(params, Invalid):
        return params
    return inner, params


def _mail(verb: str) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        usage = f"{verb} FROM:<address>"
        # MAIL may declare SMTPUTF8 itself, so its values are read with the UTF-8 grammar.
        found = _path_and_params(arg, _FROM, usage, ctx, mail_params, utf8=True)
        if isinstance(found, Invalid):
            return found
        inner, params = found
        if not inner:
            return Mail(None, params, verb)
        try:
            sender = parse_path(inner, utf8=True)
        except AddressError as exc:
            return invalid(501, "5.1.7", f"Bad sender address syntax: {exc}")
        if sender.needs_smtputf8 and not params.smtputf8:
            # RFC 6531 section 3.5: non-ASCII address without SMTPUTF8.
            return invalid(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
        return Mail(sender, params, verb)

    return parse


def _rcpt(arg: str, ctx: ParseContext) -> Command | Invalid:
    found = _path_and_params(arg, _TO, "RCPT TO:<address>", ctx, rcpt_params, utf8=ctx.utf8)
    if isinstance(found, Invalid):
        return found
    inner, params = found
    # RFC 5321 section 4.1.1.3: "Postmaster" with no domain must be accepted.
    if inner.lower() == "postmaster":
        return Rcpt(Address("Postmaster", ""), params)
    try:
        recipient = parse_path(inner, utf8=True)
    except AddressError as exc:
        return invalid(501, "5.1.3", f"Bad recipient address syntax: {exc}")
    if recipient.needs_smtputf8 and not ctx.utf8:
        # RFC 6531 section 3.5: a non-ASCII address in a transaction without SMTPUTF8.
        return invalid(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
    return Rcpt(recipient, params)


def _hello(verb: str) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        domain = arg.strip()
        if not domain or " " in domain:
            return syntax_error(f"{verb} hostname")
        if not domain.isascii() and not is_domain(domain, utf8=True):
            return syntax_error(f"{verb} hostname")
        return Ehlo(domain) if verb == "EHLO" else Helo(domain)

    return parse


def _no_args(verb: str, command: Command) -> Callable[[str, ParseContext], Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        return syntax_error(verb) if arg.strip() else command

    return parse


def _required(verb: str, make: Callable[[str], Command]) -> Callable[..., Command | Invalid]:
    def parse(arg: str, ctx: ParseContext) -> Command | Invalid:
        arg = arg.strip()
        return make(arg) if arg else syntax_error(f"{verb} <argument>")

    return parse


def _bdat(arg: str, ctx: ParseContext) -> Command | Invalid:
    words = arg.split()
    if not 1 <= len(words) <= 2 or not words[0].isdigit() or len(words[0]) > 20:
        return syntax_error("BDAT chunk-size [LAST]")
    if len(words) == 2 and words[1].upper() != "LAST":
        return syntax_error("BDAT chunk-size [LAST]")
    return Bdat(int(words[0]), len(words) == 2)


def _auth(arg: str, ctx: ParseContext) -> Command | Invalid:
    words = arg.split()
    if not 1 <= len(words) <= 2:
        return syntax_error("AUTH mechanism [initial-response]")
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
        return invalid(500, "5.5.2", "NUL character in command")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return invalid(500, "5.5.2", "Invalid characters in command")
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    parser = _PARSERS.get(verb)
    if parser is None:
        return Invalid(UNRECOGNIZED)
    if not arg.isascii() and verb not in _UTF8_VERBS:
        return invalid(500, "5.5.2", "8-bit characters in command")
    return parser(arg, ctx)
