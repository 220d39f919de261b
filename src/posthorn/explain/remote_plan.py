"""The remote part of `posthorn explain`: from DNS answers to the plan a delivery follows.

Owns: naming the [routes] entry a domain uses, the hosts a delivery would try and their
order (through `dns.mx_candidates`, the function the remote transport uses, with equal
preferences kept in DNS order and marked as shuffled instead of shuffled), the per-
delivery address limit, the TLS policy and AUTH user of the destination (the transport's
own `tls_policy`), and the verdict: a failure that ends every attempt (null MX,
NXDOMAIN, a DNS failure, this host being the best MX) or no host with an address to try.
Pure: takes the DNS answers as values (`lookup.py` fetches them). Does not own delivery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from posthorn.config import SmtpClientConfig
from posthorn.delivery.remote import MAX_ADDRESSES, no_address, tls_policy
from posthorn.dns import (
    LookupFailed,
    MxAnswer,
    MxRecord,
    MxRecords,
    NoRecords,
    NoSuchDomain,
    mx_candidates,
)
from posthorn.explain.model import Cname, Host, MxEntry, RemotePlan, Target, verdict_of
from posthorn.outcome import Deferred, Failed
from posthorn.routing.nexthop import Nexthop, TransportTable
from posthorn.smtp.reply import Reply

__all__ = ["AddressAnswer", "DnsFacts", "candidates", "plan", "target_of"]

AddressAnswer = list[str] | NoSuchDomain | NoRecords | LookupFailed


@dataclasses.dataclass(frozen=True, slots=True)
class DnsFacts:
    """What DNS said about one destination."""

    mx: MxAnswer | None  # None: no MX lookup (a relay host, an address literal)
    cnames: tuple[tuple[str, str], ...] = ()
    addresses: dict[str, AddressAnswer] = dataclasses.field(default_factory=dict)
    host_cnames: dict[str, tuple[tuple[str, str], ...]] = dataclasses.field(default_factory=dict)


def _keep_order(group: list[MxRecord]) -> None:
    """Instead of shuffling equal preferences: the explanation marks them as shuffled."""


def candidates(
    nexthop: Nexthop, answer: MxAnswer | None, me: Iterable[str]
) -> list[str] | Failed | Deferred:
    """The hosts a delivery tries, in order (equal preferences in DNS order), or the
    outcome that ends it before any connection."""
    if not nexthop.mx or answer is None:
        return [nexthop.host]
    return mx_candidates(nexthop.host, answer, me=me, shuffle=_keep_order)


def target_of(table: TransportTable, domain: str) -> tuple[Nexthop, Target]:
    """The next hop of `domain` (the transport table's lookup) and where it comes from."""
    nexthop = table.lookup(domain)
    key = domain.lower().rstrip(".")
    if key in table.routes:
        source = f"routes.{key}"
    elif "*" in table.routes:
        source = "routes.*"
    else:
        source = ""
    return nexthop, Target(nexthop.label, source, nexthop.host, nexthop.mx)


def _conclusion(nexthop: Nexthop, answer: MxAnswer | None, found: object) -> str:
    if not nexthop.mx or answer is None:
        return "relay"
    if isinstance(answer, LookupFailed):
        return "dns failure"
    if isinstance(answer, NoSuchDomain):
        return "nxdomain"
    if isinstance(answer, NoRecords) or not answer.records:
        return "implicit"
    if not any(r.host for r in answer.records):
        return "null"
    return "mx" if isinstance(found, list) else "loop"


def _chain(steps: tuple[tuple[str, str], ...]) -> tuple[Cname, ...]:
    return tuple(Cname(alias, target) for alias, target in steps)


def _hosts(found: list[str], records: tuple[MxEntry, ...], facts: DnsFacts) -> tuple[Host, ...]:
    hosts: list[Host] = []
    total = 0  # addresses tried so far in this delivery (remote.py stops at the limit)
    for name in found:
        preferences = [r.preference for r in records if r.host == name]
        preference = min(preferences) if preferences else None
        equal = tuple(
            r.host
            for r in records
            if r.preference == preference and r.host != name and r.host in found
        )
        answer = facts.addresses.get(name, LookupFailed("not looked up"))
        cnames = _chain(facts.host_cnames.get(name, ()))
        if not isinstance(answer, list):
            host = Host(name, preference, equal, cnames, problem=no_address(name, answer))
        else:
            tried = min(len(answer), MAX_ADDRESSES) if total < MAX_ADDRESSES else 0
            total += tried
            host = Host(name, preference, equal, cnames, tuple(answer), tried)
        hosts.append(host)
    return tuple(hosts)


def _no_host_failure(hosts: tuple[Host, ...]) -> Reply:
    """What a delivery ends with when no host had an address (remote.py's leftovers:
    the last temporary reason, else the last permanent one)."""
    problems = [h.problem for h in hosts if h.problem is not None]
    temporary = [p for p in problems if not p.is_permanent]
    if temporary:
        return temporary[-1]
    if problems:
        return problems[-1]
    return Reply(451, "4.4.0", ("No mail exchanger could be tried",))


def plan(
    domain: str,
    nexthop: Nexthop,
    target: Target,
    facts: DnsFacts,
    config: SmtpClientConfig,
    me: Iterable[str],
) -> RemotePlan:
    """The delivery plan for `domain`, from the DNS facts of its next hop."""
    records: tuple[MxEntry, ...] = ()
    if isinstance(facts.mx, MxRecords):
        records = tuple(MxEntry(r.preference, r.host) for r in facts.mx.records)
    tls, tls_source = tls_policy(config, domain, nexthop)
    credentials = config.credentials.get(nexthop.host)
    base = RemotePlan(
        domain=domain,
        target=target,
        cnames=_chain(facts.cnames),
        records=records,
        port=nexthop.port or config.port,
        tls=tls,
        tls_source=tls_source,
        auth_user=credentials.partition(":")[0] if credentials else None,
        auth_without_tls=config.auth_without_tls,
    )
    found = candidates(nexthop, facts.mx, me)
    conclusion = _conclusion(nexthop, facts.mx, found)
    listed = [r.host for r in records if r.host]
    skipped = tuple(
        dict.fromkeys(h for h in listed if not isinstance(found, list) or h not in found)
    )
    if not isinstance(found, list):
        failure = found.reply
        return dataclasses.replace(
            base,
            conclusion=conclusion,
            skipped=skipped if conclusion == "loop" else (),
            failure=failure,
            verdict=verdict_of(failure),
        )
    hosts = _hosts(found, records, facts)
    if any(h.tried for h in hosts):
        return dataclasses.replace(base, conclusion=conclusion, skipped=skipped, hosts=hosts)
    failure = _no_host_failure(hosts)
    return dataclasses.replace(
        base,
        conclusion=conclusion,
        skipped=skipped,
        hosts=hosts,
        failure=failure,
        verdict=verdict_of(failure),
    )
