"""Routes: where one recipient's copy of a message goes, as a closed union of values.

Owns: the route types (`Mailbox`, `Mbox`, `Remote`, `File`, `Pipe`, `Refused`), the subset
that is fixed when aliases are expanded at intake and so must be stored with the recipient
(`FixedRoute`), and the text form the queue stores them in. Pure values; no I/O. Does not
own deciding a route (`router.py`, `expand.py`) or delivering along one (`delivery/`).

Raises `ValueError` from `fixed_route_from_text` for text it did not write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from posthorn.smtp.reply import Reply

__all__ = [
    "File",
    "FixedRoute",
    "Mailbox",
    "Mbox",
    "Pipe",
    "Refused",
    "Remote",
    "Route",
    "fixed_route_from_text",
    "fixed_route_to_text",
]


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Deliver into the Maildir of `user` (a local name, or name@domain for a virtual
    domain)."""

    user: str


@dataclass(frozen=True, slots=True)
class Mbox:
    """Deliver into the mbox file of `user` (the mbox variant of `Mailbox`)."""

    user: str


@dataclass(frozen=True, slots=True)
class Remote:
    """Relay to the mail exchangers of `domain` (or the route configured for it)."""

    domain: str


@dataclass(frozen=True, slots=True)
class File:
    """Append to the mbox file `path` (an alias or forward target `/path`), with the
    privileges of account `user` when running as root."""

    path: str
    user: str


@dataclass(frozen=True, slots=True)
class Pipe:
    """Feed the message to `command` (split like a shell would, run without one), with
    the privileges of account `user` when running as root."""

    command: str
    user: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Decided at intake: this recipient fails with `reply` (a forwarding loop, a pipe
    target that config forbids); the queue runner turns it into a bounce."""

    reply: Reply


Route = Mailbox | Mbox | Remote | File | Pipe | Refused
# Routes that cannot be derived from the address again at delivery time.
FixedRoute = File | Pipe | Refused


def fixed_route_to_text(route: FixedRoute) -> str:
    """The stored form (JSON): stable, readable, and the same for every queue store."""
    if isinstance(route, File):
        return json.dumps({"file": route.path, "user": route.user}, ensure_ascii=False)
    if isinstance(route, Pipe):
        return json.dumps({"pipe": route.command, "user": route.user}, ensure_ascii=False)
    reply = route.reply
    fields = {"refused": reply.code, "esc": reply.esc, "lines": list(reply.lines)}
    return json.dumps(fields, ensure_ascii=False)


def fixed_route_from_text(text: str) -> FixedRoute:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"not a stored route: {text!r}")
    if "file" in data:
        return File(str(data["file"]), str(data["user"]))
    if "pipe" in data:
        return Pipe(str(data["pipe"]), str(data["user"]))
    if "refused" in data:
        return Refused(Reply(int(data["refused"]), data["esc"], tuple(data["lines"])))
    raise ValueError(f"not a stored route: {text!r}")
