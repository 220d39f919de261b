"""SASL for SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN mechanisms.

Owns: one authentication exchange as a small state machine over text lines: decoding the
initial response and each client line (base64), the 334 challenges, cancellation with
`*`, and the credentials that come out at the end. Pure: no I/O, no password checks (the
session asks `posthorn.passwords`). Does not own when AUTH is allowed (the session and
the core's AUTH state) or throttling (`receive/limits.py`).

Never raises for client input: every mistake is an `Abort` carrying the reply.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from posthorn.smtp.reply import Reply

__all__ = ["MECHANISMS", "Abort", "Challenge", "Credentials", "SaslExchange", "Step"]

MECHANISMS = ("PLAIN", "LOGIN")


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send `334 <text>` and wait for the client's next line."""

    text: str  # already base64


@dataclass(frozen=True, slots=True)
class Credentials:
    """The client has said who it is; check the password."""

    user: str
    password: str
    authzid: str = ""


@dataclass(frozen=True, slots=True)
class Abort:
    """The exchange is over without credentials; send `reply`."""

    reply: Reply


Step = Challenge | Credentials | Abort

# RFC 4954 section 4: "*" cancels the exchange, answered with 501.
_CANCELLED = Abort(Reply(501, "5.7.0", ("Authentication aborted",)))
_UNDECODABLE = Abort(Reply(501, "5.5.2", ("Cannot decode response",)))
_MALFORMED = Abort(Reply(501, "5.5.2", ("Malformed authentication response",)))
_USERNAME = base64.b64encode(b"Username:").decode()
_PASSWORD = base64.b64encode(b"Password:").decode()


def _decode(text: str) -> str | None:
    """The UTF-8 text of a base64 response ("=" is the empty response); None if invalid."""
    text = text.strip()
    if text == "=":
        return ""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


class SaslExchange:
    """One AUTH exchange: `start(initial)`, then `respond(line)` after each Challenge."""

    def __init__(self, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported mechanism {mechanism}")
        self.mechanism = mechanism
        self._user: str | None = None

    def start(self, initial: str | None) -> Step:
        if initial is None:
            # PLAIN: an empty challenge; LOGIN: ask for the user name.
            return Challenge("" if self.mechanism == "PLAIN" else _USERNAME)
        return self.respond(initial)

    def respond(self, line: str) -> Step:
        if line.strip() == "*":
            return _CANCELLED
        text = _decode(line)
        if text is None:
            return _UNDECODABLE
        if self.mechanism == "PLAIN":
            return _plain(text)
        if self._user is None:
            self._user = text
            return Challenge(_PASSWORD)
        return Credentials(self._user, text) if self._user else _MALFORMED


def _plain(text: str) -> Step:
    """RFC 4616 section 2: message = [authzid] NUL authcid NUL passwd."""
    parts = text.split("\0")
    if len(parts) != 3 or not parts[1]:
        return _MALFORMED
    authzid, user, password = parts
    return Credentials(user, password, authzid)
