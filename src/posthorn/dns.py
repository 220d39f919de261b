"""DNS: the resolver Posthorn uses for every lookup, and mail routing through MX records.

Owns: constructing a dnspython asynchronous resolver that asks the configured name
servers (HOST or HOST:PORT, so sites and tests can point at their own server) or those of
/etc/resolv.conf, with one overall timeout; the MX answer as a value (`MxAnswer`), the
pure ordering of mail exchangers (`mx_candidates`, RFC 5321 section 5.1, RFC 7505) and
the lookups behind it (`MxResolver`: MX, A and AAAA, CNAME chains). Does not own
connecting to the hosts (`posthorn.delivery.remote`); SPF and the like live with the code
that needs them and take the resolver as a value.

Lookups never raise for DNS trouble: NXDOMAIN, no records and temporary failures (SERVFAIL,
timeouts, junk answers) come back as values.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from posthorn.config import DnsConfig
from posthorn.outcome import Deferred, Failed
from posthorn.smtp.reply import Reply

__all__ = [
    "LookupFailed",
    "MxAnswer",
    "MxRecord",
    "MxRecords",
    "MxResolver",
    "NoRecords",
    "NoSuchDomain",
    "make_resolver",
    "mx_candidates",
    "parse_nameserver",
]


def parse_nameserver(text: str) -> tuple[str, int]:
    """'192.0.2.1', '192.0.2.1:5353', '[2001:db8::1]:53' or '2001:db8::1' -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def make_resolver(config: DnsConfig) -> dns.asyncresolver.Resolver:
    """An async resolver; with no configured servers it reads /etc/resolv.conf."""
    if not config.nameservers:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers = [parse_nameserver(s) for s in config.nameservers]
        ports = {port for _, port in servers}
        resolver.nameservers = [host for host, _ in servers]
        # dnspython has one port for plain nameserver strings; per-server ports need
        # Nameserver objects.
        if len(ports) == 1:
            resolver.port = ports.pop()
        else:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in servers
            ]
    resolver.lifetime = config.timeout
    resolver.timeout = min(config.timeout, 3.0)
    return resolver


# -- MX answers as values -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MxRecord:
    preference: int
    host: str  # lower case, no trailing dot; "" is the root: RFC 7505's null MX "."


@dataclass(frozen=True, slots=True)
class MxRecords:
    records: tuple[MxRecord, ...]


@dataclass(frozen=True, slots=True)
class NoRecords:
    """The name exists but has no records of the type asked for."""


@dataclass(frozen=True, slots=True)
class NoSuchDomain:
    """NXDOMAIN: the name does not exist."""


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """SERVFAIL, a timeout or an unreadable answer: try again later."""

    reason: str


MxAnswer = MxRecords | NoRecords | NoSuchDomain | LookupFailed


def _temporary(domain: str, reason: str) -> Deferred:
    return Deferred(Reply(451, "4.4.3", (f"DNS lookup for {domain} failed: {reason}",)))


def mx_candidates(
    domain: str,
    answer: MxAnswer,
    *,
    me: Iterable[str] = (),
    shuffle: Callable[[list[MxRecord]], None] = random.shuffle,
) -> list[str] | Failed | Deferred:
    """The hosts to try for `domain`, in order, or the outcome that ends the attempt.

    RFC 5321 section 5.1: sort by preference, equal preferences in random order; no MX
    records means the domain itself (implicit MX). RFC 7505: a null MX fails at once.
    If this host (`me`) is one of the exchangers, only those with a lower preference
    value are candidates, so that mail never loops between backups and primaries.
    """
    if isinstance(answer, LookupFailed):
        return _temporary(domain, answer.reason)
    if isinstance(answer, NoSuchDomain):
        return Failed(Reply(550, "5.1.2", (f"Domain {domain} not found (NXDOMAIN)",)))
    if isinstance(answer, NoRecords) or not answer.records:
        return [domain]
    records = [r for r in answer.records if r.host]
    if not records:
        # RFC 7505 section 3: the domain accepts no mail at all.
        return Failed(Reply(556, "5.1.10", (f"Domain {domain} does not accept mail (null MX)",)))
    mine = {name.lower().rstrip(".") for name in me}
    own = [r.preference for r in records if r.host in mine]
    if own:
        records = [r for r in records if r.preference < min(own)]
        if not records:
            text = f"Mail for {domain} loops back to myself (best MX)"
            return Failed(Reply(554, "5.4.6", (text,)))
    ordered: list[str] = []
    for preference in sorted({r.preference for r in records}):
        group = [r for r in records if r.preference == preference]
        shuffle(group)
        ordered.extend(r.host for r in group if r.host not in ordered)
    return ordered


# -- the lookups ----------------------------------------------------------------------

_MAX_CNAME_HOPS = 8


def _host_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower() if name != dns.name.root else ""


class MxResolver:
    """MX and address lookups for mail routing over a dnspython async resolver."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver

    async def _query(
        self, name: str, rdtype: str, cnames: list[tuple[str, str]] | None = None
    ) -> dns.resolver.Answer | MxAnswer:
        """One lookup that follows a CNAME chain the server left unfinished; each
        (alias, canonical name) step is appended to `cnames` when one is given."""
        try:
            for _ in range(_MAX_CNAME_HOPS):
                answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
                chain = _cname_chain(answer, name)
                if cnames is not None:
                    cnames.extend(chain)
                if answer.rrset is not None:
                    return answer
                if not chain:
                    return NoRecords()
                name = chain[-1][1]
        except dns.resolver.NXDOMAIN:
            return NoSuchDomain()
        except dns.resolver.NoAnswer:
            return NoRecords()
        except dns.resolver.NoNameservers:
            return LookupFailed("server failure (SERVFAIL)")
        except dns.exception.Timeout:
            return LookupFailed("timed out")
        except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
            return LookupFailed(f"bad answer: {exc}")
        return LookupFailed("CNAME chain too long")

    async def mx(self, domain: str, cnames: list[tuple[str, str]] | None = None) -> MxAnswer:
        """The MX records of `domain`; CNAME steps on the way go into `cnames`."""
        found = await self._query(domain, "MX", cnames)
        if not isinstance(found, dns.resolver.Answer):
            return found
        records = tuple(
            MxRecord(int(rr.preference), _host_text(rr.exchange))
            for rr in found
            if rr.rdtype == dns.rdatatype.MX
        )
        return MxRecords(records)

    async def addresses(
        self, host: str, cnames: list[tuple[str, str]] | None = None
    ) -> list[str] | NoSuchDomain | NoRecords | LookupFailed:
        """All IPv6 and IPv4 addresses of `host` (IPv6 first), or why there are none.

        An IP address is its own answer. A temporary failure of one family counts only
        when the other family found nothing. CNAME steps on the way go into `cnames`.
        """
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        chains: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
        six, four = await asyncio.gather(
            self._query(host, "AAAA", chains[0]), self._query(host, "A", chains[1])
        )
        if cnames is not None:
            cnames.extend(dict.fromkeys(chains[0] + chains[1]))
        found = [
            rr.address
            for answer in (six, four)
            if isinstance(answer, dns.resolver.Answer)
            for rr in answer
            if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        ]
        if found:
            return list(dict.fromkeys(found))
        for answer in (six, four):
            if isinstance(answer, LookupFailed):
                return answer
        if isinstance(six, NoSuchDomain) or isinstance(four, NoSuchDomain):
            return NoSuchDomain()
        return NoRecords()


def _cname_chain(answer: dns.resolver.Answer, name: str) -> list[tuple[str, str]]:
    """The CNAME steps in the response that lead on from `name`: [(alias, target), ...]."""
    chain: list[tuple[str, str]] = []
    owner = dns.name.from_text(name)
    while len(chain) < _MAX_CNAME_HOPS:
        target = next(
            (
                rr.target
                for rrset in answer.response.answer
                if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == owner
                for rr in rrset
            ),
            None,
        )
        if target is None:
            break
        chain.append((_host_text(owner), _host_text(target)))
        owner = target
    return chain
