"""ESMTP parameters of MAIL and RCPT: their syntax, and each one checked against what
the server advertised.

Owns: the esmtp-param grammar (RFC 5321 section 4.1.2, with UTF-8 values under RFC
6531), duplicate and unknown parameters (555, RFC 5321 section 4.1.1.11), SIZE (RFC
1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), RET, ENVID, NOTIFY and ORCPT
(RFC 3461), AUTH (RFC 4954), and the `Invalid` replies of syntax errors that the
command grammar shares (`syntax_error`, `invalid`). Does not own the command verbs and
paths (`commands.py`) or what a valid parameter makes the server do.

Never raises for peer input: every mistake becomes `Invalid(reply)`.
"""

from __future__ import annotations

import re

from posthorn.smtp import xtext
from posthorn.smtp.events import Invalid, MailParams, RcptParams
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply

__all__ = ["invalid", "mail_params", "rcpt_params", "split_params", "syntax_error"]

_PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# RFC 5321 section 4.1.2: esmtp-value = 1*(%d33-60 / %d62-126); RFC 6531 adds UTF-8.
_PARAM_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e]+\Z")
_PARAM_VALUE_UTF8 = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+\Z")
_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def syntax_error(usage: str) -> Invalid:
    # RFC 5321 section 4.2.2: 501 for syntax errors in parameters or arguments.
    return Invalid(Reply(501, "5.5.4", (f"Syntax: {usage}",)))


def invalid(code: int, esc: str, text: str) -> Invalid:
    return Invalid(Reply(code, esc, (text,)))


def split_params(text: str, *, utf8: bool) -> dict[str, str | None] | Invalid:
    """`KEY[=VALUE] ...` -> {KEY (upper case): VALUE or None}."""
    params: dict[str, str | None] = {}
    value_re = _PARAM_VALUE_UTF8 if utf8 else _PARAM_VALUE
    for word in text.split():
        key, eq, value = word.partition("=")
        if not _PARAM_KEY.match(key) or (eq and not value_re.match(value)):
            return invalid(501, "5.5.4", f"Invalid parameter syntax: {word[:40]}")
        key = key.upper()
        if key in params:
            return invalid(501, "5.5.4", f"Duplicate parameter {key}")
        params[key] = value if eq else None
    return params


def _unsupported(key: str) -> Invalid:
    # RFC 5321 section 4.1.1.11: 555 when a parameter is not recognized.
    return invalid(555, "5.5.4", f"Unsupported parameter {key}")


def mail_params(raw: dict[str, str | None], caps: Capabilities) -> MailParams | Invalid:
    """MAIL's parameters; each is known only when its extension was advertised."""
    size: int | None = None
    body = ret = envid = auth = None
    smtputf8 = False
    for key, value in raw.items():
        if key == "SIZE" and caps.size is not None:
            if value is None or not value.isdigit() or len(value) > 20:
                return syntax_error("SIZE=<number of octets>")
            size = int(value)
            # RFC 1870 section 6.3: refuse at MAIL time when the declared size is too big.
            if caps.size and size > caps.size:
                return invalid(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif key == "BODY" and caps.eightbitmime:
            body = (value or "").upper()
            if body == "BINARYMIME" and not caps.binarymime:
                return _unsupported("BODY=BINARYMIME")
            if body not in ("7BIT", "8BITMIME", "BINARYMIME"):
                return syntax_error("BODY=7BIT|8BITMIME")
        elif key == "SMTPUTF8" and caps.smtputf8:
            if value is not None:
                return syntax_error("SMTPUTF8 takes no value")
            smtputf8 = True
        elif key == "RET" and caps.dsn:
            ret = (value or "").upper()
            if ret not in ("FULL", "HDRS"):
                return syntax_error("RET=FULL|HDRS")
        elif key == "ENVID" and caps.dsn:
            try:
                envid = xtext.decode(value or "")
            except ValueError:
                return syntax_error("ENVID=<xtext>")
            # RFC 3461 section 4.4: at most 100 characters.
            if not envid or len(value or "") > 100:
                return syntax_error("ENVID=<xtext of at most 100 characters>")
        elif key == "AUTH" and caps.auth:
            try:
                auth = xtext.decode(value or "")
            except ValueError:
                return syntax_error("AUTH=<xtext mailbox>")
        else:
            return _unsupported(key)
    return MailParams(size, body, smtputf8, ret, envid, auth)


def rcpt_params(raw: dict[str, str | None], caps: Capabilities) -> RcptParams | Invalid:
    """RCPT's parameters: NOTIFY and ORCPT, when DSN was advertised (RFC 3461)."""
    notify: frozenset[str] | None = None
    orcpt: str | None = None
    for key, value in raw.items():
        if key == "NOTIFY" and caps.dsn:
            words = frozenset((value or "").upper().split(","))
            # RFC 3461 section 4.1: NEVER, or any combination of the other three.
            if not (words == {"NEVER"} or (words and words <= _NOTIFY_WORDS)):
                return syntax_error("NOTIFY=NEVER|SUCCESS,FAILURE,DELAY")
            notify = words
        elif key == "ORCPT" and caps.dsn:
            addr_type, semi, addr = (value or "").partition(";")
            if not semi or not addr_type or not addr:
                return syntax_error("ORCPT=addr-type;xtext")
            try:
                orcpt = f"{addr_type};{xtext.decode(addr)}"
            except ValueError:
                return syntax_error("ORCPT=addr-type;xtext")
        else:
            return _unsupported(key)
    return RcptParams(notify, orcpt)
