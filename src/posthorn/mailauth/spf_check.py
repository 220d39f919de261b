"""SPF (RFC 7208) of one inbound message: may the client IP send for the sender?

Owns: calling pyspf with the right identity (MAIL FROM, or postmaster@HELO for the null
sender, RFC 7208 section 2.4) through the resolver of `lookup.py`, and turning its answer
into an `SpfResult`. Blocking (DNS): call it in a worker thread. Does not own what is done
with the result.

Never raises: DNS trouble is a `temperror` result, a broken record `permerror`.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.resolver
import spf

from posthorn.address import Address
from posthorn.mailauth import lookup

__all__ = ["SpfResult", "check_spf"]


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass fail softfail neutral none permerror temperror (RFC 7208 2.6)
    identity: str  # the checked mailbox: smtp.mailfrom (or smtp.helo's postmaster)
    domain: str  # its domain, for DMARC alignment
    scope: str  # "mailfrom" or "helo"
    reason: str = ""


def check_spf(
    resolver: dns.resolver.Resolver, ip: str, sender: Address | None, helo: str
) -> SpfResult:
    if sender is not None and sender.domain:
        identity, domain, scope = str(sender), sender.domain_key, "mailfrom"
    else:
        identity, domain, scope = f"postmaster@{helo}", helo.lower().rstrip("."), "helo"
    if not domain:
        return SpfResult("none", identity, domain, scope, "no domain to check")
    try:
        with lookup.using(resolver):
            query = spf.query(i=ip, s=identity, h=helo or domain, timeout=resolver.lifetime)
            result, _, reason = query.check()
    except (spf.TempError, lookup.TempFail) as exc:
        return SpfResult("temperror", identity, domain, scope, str(exc))
    except (spf.PermError, ValueError) as exc:
        return SpfResult("permerror", identity, domain, scope, str(exc))
    return SpfResult(str(result), identity, domain, scope, str(reason))
