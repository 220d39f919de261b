"""DNS for the authentication checks: a blocking dnspython resolver built from `[dns]`.

Owns: the resolver that SPF (pyspf), DKIM (dkimpy) and DMARC lookups use, asking exactly
the configured name servers (tests point it at their loopback server), and the two
adapters the libraries expect: dkimpy's `dnsfunc(name, timeout) -> bytes | None` and
pyspf's module-level `DNSLookup`, which is replaced once, here, by one that uses the
resolver of the calling thread and refuses to look anything up without one (so pyspf
never falls back to the system's resolver). The checks run in worker threads
(`asyncio.to_thread`), so blocking lookups are right here.

Raises `TempFail` for a DNS failure that is not an answer (timeout, SERVFAIL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dns.exception
import dns.nameserver
import dns.resolver
import spf

from posthorn.config import DnsConfig
from posthorn.dns import parse_nameserver

__all__ = ["TempFail", "make_sync_resolver", "txt_records", "using"]


class TempFail(Exception):
    """The DNS could not answer now; the check's result is temperror."""


def make_sync_resolver(config: DnsConfig) -> dns.resolver.Resolver:
    """A blocking resolver for the configured servers (or /etc/resolv.conf's)."""
    if not config.nameservers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port)
            for host, port in map(parse_nameserver, config.nameservers)
        ]
    resolver.lifetime = config.timeout
    resolver.timeout = min(config.timeout, 3.0)
    return resolver


def txt_records(resolver: dns.resolver.Resolver, name: str) -> list[bytes] | None:
    """Each TXT record's strings joined; None when the name or the records do not exist."""
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise TempFail(f"DNS lookup of {name} TXT failed: {exc}") from exc
    return [b"".join(rdata.strings) for rdata in answer]


_local = threading.local()


@contextmanager
def using(resolver: dns.resolver.Resolver) -> Iterator[None]:
    """Make pyspf's lookups in this thread go to `resolver`."""
    _local.resolver = resolver
    try:
        yield
    finally:
        _local.resolver = None


def _value(qtype: str, rdata: Any) -> Any:
    if qtype in ("A", "AAAA"):
        return rdata.address
    if qtype == "MX":
        return (rdata.preference, rdata.exchange)
    if qtype == "PTR":
        return rdata.target.to_text(True)
    return rdata.strings  # TXT


def _spf_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 30) -> list[Any]:
    """pyspf's DNSLookup contract: [((name, qtype), value), ...]; TempError on failure."""
    resolver: dns.resolver.Resolver | None = getattr(_local, "resolver", None)
    if resolver is None:
        raise spf.TempError("DNS: no resolver configured for this check")
    if qtype not in ("A", "AAAA", "MX", "PTR", "TXT"):
        return []
    try:
        answer = resolver.resolve(name, qtype, search=False, lifetime=min(timeout, 30))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    return [((name, qtype), _value(qtype, rdata)) for rdata in answer]


spf.DNSLookup = _spf_lookup
