"""Delivery outcomes as values: Delivered | Deferred | Failed, each with its reply.

Owns: the three outcome types and the two conversions every deliverer needs: a reply
from a peer into an outcome (`from_reply`) and an OS error into a deferral
(`from_oserror`). Does not own what to do about an outcome (the queue runner does).
"""

from __future__ import annotations

import enum
import errno
import ssl
from dataclasses import dataclass

from posthorn.smtp.reply import Reply

__all__ = [
    "Deferred",
    "Delivered",
    "Failed",
    "Handoff",
    "Outcome",
    "from_oserror",
    "from_reply",
]


class Handoff(enum.Enum):
    """What a delivery means for success notifications (RFC 3461 section 6.2.2)."""

    FINAL = "delivered"  # delivered here: a success DSN says Action: delivered
    RELAYED = "relayed"  # handed to a peer without DSN: Action: relayed
    DSN_PASSED = "passed"  # the peer speaks DSN and took the NOTIFY request with it


@dataclass(frozen=True, slots=True)
class Delivered:
    reply: Reply
    relay: str = ""  # "local", "mx.example.org[192.0.2.1]:25", ...
    handoff: Handoff = Handoff.FINAL


@dataclass(frozen=True, slots=True)
class Deferred:
    reply: Reply
    relay: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    reply: Reply
    relay: str = ""


Outcome = Delivered | Deferred | Failed


def from_reply(reply: Reply, relay: str = "") -> Outcome:
    """2xx delivered, 4xx deferred, 5xx failed (RFC 5321 section 4.2.1)."""
    if reply.code < 400:
        return Delivered(reply, relay)
    if reply.code < 500:
        return Deferred(reply, relay)
    return Failed(reply, relay)


# RFC 3463 section 3.4 (network and routing) and 3.3 (mail system) codes for OS errors.
_ERRNO_ESC = {
    errno.ECONNREFUSED: ("4.4.1", "Connection refused"),
    errno.EHOSTUNREACH: ("4.4.1", "No route to host"),
    errno.ENETUNREACH: ("4.4.1", "Network unreachable"),
    errno.ECONNRESET: ("4.4.2", "Connection reset by peer"),
    errno.EPIPE: ("4.4.2", "Connection closed by peer"),
    errno.ENOSPC: ("4.3.1", "Mail system full"),
    errno.EDQUOT: ("4.2.2", "Mailbox full"),
}


def from_oserror(exc: BaseException, relay: str = "") -> Deferred:
    """A failure to talk or write becomes a deferral with a readable diagnostic."""
    if isinstance(exc, TimeoutError):
        return Deferred(Reply(451, "4.4.2", ("Timed out",)), relay)
    if isinstance(exc, ssl.SSLError):
        return Deferred(Reply(451, "4.7.5", (f"TLS error: {exc.reason or exc}",)), relay)
    if isinstance(exc, OSError) and exc.errno in _ERRNO_ESC:
        esc, text = _ERRNO_ESC[exc.errno]
        return Deferred(Reply(451, esc, (text,)), relay)
    if isinstance(exc, OSError):
        return Deferred(Reply(451, "4.3.0", (exc.strerror or str(exc) or "I/O error",)), relay)
    return Deferred(Reply(451, "4.3.0", (str(exc) or type(exc).__name__,)), relay)
