"""What `posthorn explain` found out, as values: the steps from an address to delivery.

Owns: the explanation of one address (`Explanation`): the destination it really names,
the aliases and forward files that rewrote it (`Expansion`), each final recipient with
its delivery (`Delivery`: a mailbox, a file, a pipe, a refusal, or a relay plan with its
DNS facts, try order and TLS policy), the retry timeline, and the verdict with the
sysexits code it maps to. Pure values; no I/O. Does not own finding these facts
(`explainer.py`, `lookup.py`, `remote_plan.py`) or showing them (`render.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from posthorn.smtp.reply import Reply

__all__ = [
    "Cname",
    "Delivery",
    "Expansion",
    "Explanation",
    "FileAppend",
    "FinalRecipient",
    "Host",
    "Mailbox",
    "MxEntry",
    "PipeCommand",
    "Refusal",
    "Relay",
    "RemotePlan",
    "Target",
    "Timeline",
    "Verdict",
    "verdict_of",
    "worst",
]


class Verdict(enum.Enum):
    """How mail to the address would end, with the sysexits.h code `explain` exits with."""

    DELIVERABLE = 0  # EX_OK
    NO_USER = 67  # EX_NOUSER: a local user that does not exist
    NO_HOST = 68  # EX_NOHOST: no such domain or host, or a null MX
    UNAVAILABLE = 69  # EX_UNAVAILABLE: refused for another reason (a loop, a policy)
    TEMPORARY = 75  # EX_TEMPFAIL: a temporary (DNS) failure; it would be retried

    @property
    def exit_code(self) -> int:
        return self.value


# Permanent failures first (the first one found wins), then temporary ones.
_SEVERITY = (Verdict.NO_USER, Verdict.NO_HOST, Verdict.UNAVAILABLE, Verdict.TEMPORARY)


def verdict_of(reply: Reply) -> Verdict:
    """The verdict a failure reply means, by its RFC 3463 enhanced status code."""
    if not reply.is_permanent:
        return Verdict.TEMPORARY
    detail = (reply.esc or "").partition(".")[2]
    if detail == "1.1":  # bad destination mailbox address
        return Verdict.NO_USER
    if detail in ("1.2", "1.10", "4.4"):  # bad destination system, null MX, unable to route
        return Verdict.NO_HOST
    return Verdict.UNAVAILABLE


def worst(verdicts: list[Verdict]) -> Verdict:
    """Deliverable only when every part is; else the most severe problem."""
    for verdict in _SEVERITY:
        if verdict in verdicts:
            return verdict
    return Verdict.DELIVERABLE


@dataclass(frozen=True, slots=True)
class Expansion:
    """An address that an alias or a forward file turned into other targets."""

    address: str
    kind: str  # "alias" | "forward file"
    source: str  # "/etc/posthorn/aliases line 3", or the forward file's path
    targets: tuple[str, ...]  # as written: addresses, \\user, /file, |command, :include:
    owner: str | None = None  # owner-LIST: the envelope sender of the list's copies


@dataclass(frozen=True, slots=True)
class Mailbox:
    user: str
    format: str  # "maildir" | "mbox"
    path: str


@dataclass(frozen=True, slots=True)
class FileAppend:
    path: str
    user: str  # whose privileges the append uses (when running as root)


@dataclass(frozen=True, slots=True)
class PipeCommand:
    command: str
    user: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """The recipient fails with `reply`: at RCPT time, or when the runner delivers."""

    reply: Reply
    at_rcpt: bool = False


@dataclass(frozen=True, slots=True)
class Cname:
    """`alias IN CNAME target`: one step of a CNAME chain."""

    alias: str
    target: str


@dataclass(frozen=True, slots=True)
class MxEntry:
    """`IN MX preference host`; host "" is the null MX `.` (RFC 7505)."""

    preference: int
    host: str


@dataclass(frozen=True, slots=True)
class Host:
    """One mail exchanger (or relay host) in the order it would be tried."""

    name: str
    preference: int | None  # None: a relay host or an implicit MX
    shuffled_with: tuple[str, ...] = ()  # hosts of equal preference: random order
    cnames: tuple[Cname, ...] = ()
    addresses: tuple[str, ...] = ()  # IPv6 first, as they are tried
    tried: int = 0  # how many of them a delivery tries (the per-delivery address limit)
    problem: Reply | None = None  # why it has no address to try


@dataclass(frozen=True, slots=True)
class Target:
    """A [routes] entry or the domain's own MX records: where mail for a domain goes."""

    label: str  # "example.org", "[relay.example.org]:587"
    source: str  # "routes.example.org", "routes.*", "" (no entry: the domain's MX)
    host: str  # the relay host, or the name whose MX records are looked up
    mx: bool  # False: a relay host (or an address literal), no MX lookup

    @property
    def mx_lookup(self) -> str | None:
        return self.host if self.mx else None


@dataclass(frozen=True, slots=True)
class RemotePlan:
    """How the remote transport would deliver to one domain."""

    domain: str
    target: Target
    cnames: tuple[Cname, ...] = ()  # CNAME steps of the MX lookup
    records: tuple[MxEntry, ...] = ()  # MX records as DNS gave them
    conclusion: str = ""  # "mx", "implicit", "null", "relay", "nxdomain", "dns failure"
    skipped: tuple[str, ...] = ()  # MX hosts not tried: this host is as good or better
    hosts: tuple[Host, ...] = ()
    port: int = 25
    tls: str = "opportunistic"
    tls_source: str = "smtp_client.tls"
    auth_user: str | None = None
    auth_without_tls: bool = False  # credentials also sent without TLS
    failure: Reply | None = None  # what ends every attempt, when something does
    verdict: Verdict = Verdict.DELIVERABLE


@dataclass(frozen=True, slots=True)
class Relay:
    plan: RemotePlan


Delivery = Mailbox | FileAppend | PipeCommand | Refusal | Relay


@dataclass(frozen=True, slots=True)
class FinalRecipient:
    address: str
    via: tuple[str, ...]  # the aliases and forwards that led here, outermost first
    sender: str | None  # the envelope sender of this copy when expansion changed it
    delivery: Delivery
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Timeline:
    """When a deferred delivery is tried again, warned about and given up (seconds after
    arrival; the first attempt is at 0)."""

    profile: str
    delays: tuple[float, ...]  # after the 1st, 2nd, ... failed attempt; the last repeats
    attempts: tuple[float, ...]
    warn_at: float | None  # the failed attempt that sends the delay DSN; None: never
    warn_after: float
    give_up_at: float  # the failed attempt that bounces the message
    give_up_after: float


@dataclass(frozen=True, slots=True)
class Explanation:
    address: str  # as given
    destination: str  # what it really names (percent hack, bang path, quoted @ resolved)
    local: bool
    recipients: tuple[FinalRecipient, ...] = ()
    expansions: tuple[Expansion, ...] = ()
    refusal: Refusal | None = None  # the whole address fails (at RCPT, or expansion)
    timeline: Timeline | None = None
    verdict: Verdict = Verdict.DELIVERABLE
