"""DMARC (RFC 7489): the From domain's policy, identifier alignment and the verdict.

Owns: finding the RFC 5322 From domain of a message (exactly one domain, section 6.6.1),
the organizational domain (Public Suffix List, `publicsuffixlist`, section 3.2), finding
and parsing the policy record (`_dmarc.<domain>`, falling back to the organizational
domain, section 6.6.3), strict and relaxed alignment of the SPF and DKIM results
(section 3.1) and the resulting `DmarcResult` with the policy that applies. Pure except
`check_dmarc`, which looks the record up (blocking; worker thread). Does not own acting
on the policy.

Never raises for message content or DNS data: problems are results.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
from dataclasses import dataclass

import dns.resolver
from publicsuffixlist import PublicSuffixList

from posthorn.mailauth import lookup
from posthorn.mailauth.dkim_check import DkimResult
from posthorn.mailauth.spf_check import SpfResult

__all__ = [
    "DmarcRecord",
    "DmarcResult",
    "check_dmarc",
    "from_domain",
    "org_domain",
    "parse_record",
]


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: str  # none | quarantine | reject
    sp: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # pass fail none temperror permerror
    header_from: str
    policy: str = "none"  # the policy that applies to this message: none quarantine reject
    reason: str = ""


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def org_domain(domain: str) -> str:
    """The organizational domain: one label below the public suffix (section 3.2)."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def from_domain(header_block: bytes) -> str | None:
    """The one domain of the From field(s); None when there is not exactly one."""
    try:
        parsed = email.parser.BytesHeaderParser(policy=email.policy.SMTP).parsebytes(header_block)
        fields = parsed.get_all("From") or []
        domains = {a.domain.lower().rstrip(".") for f in fields for a in f.addresses}
    except Exception:  # the email package over hostile headers: any failure is "no From"
        return None
    if len(fields) != 1 or len(domains) != 1:
        return None
    (domain,) = domains
    return domain or None


_POLICIES = ("none", "quarantine", "reject")


def parse_record(text: str) -> DmarcRecord | None:
    """A `v=DMARC1; p=...` record (section 6.3); None when it is not a valid one."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1" or tags.get("p", "").lower() not in _POLICIES:
        return None
    sp = tags.get("sp", "").lower()
    pct = tags.get("pct", "100")
    return DmarcRecord(
        p=tags["p"].lower(),
        sp=sp if sp in _POLICIES else None,
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        pct=int(pct) if pct.isdigit() and int(pct) <= 100 else 100,
    )


def _aligned(domain: str, header_from: str, mode: str) -> bool:
    domain = domain.lower().rstrip(".")
    if mode == "s":
        return domain == header_from
    return bool(domain) and org_domain(domain) == org_domain(header_from)


def _find_record(resolver: dns.resolver.Resolver, domain: str) -> tuple[DmarcRecord | None, bool]:
    """(record, found at the organizational domain). Raises lookup.TempFail."""
    org = org_domain(domain)
    for name, at_org in ((domain, False), (org, True)):
        if at_org and org == domain:
            break
        texts = [
            t.decode("utf-8", "replace")
            for t in lookup.txt_records(resolver, f"_dmarc.{name}") or []
        ]
        records = [t for t in texts if t.strip().lower().startswith("v=dmarc1")]
        if len(records) == 1:
            return parse_record(records[0]), at_org
        if records:
            return None, at_org  # several records: as if none (section 6.6.3)
    return None, False


def check_dmarc(
    resolver: dns.resolver.Resolver,
    header_block: bytes,
    spf: SpfResult | None,
    dkim: list[DkimResult],
) -> DmarcResult:
    header_from = from_domain(header_block)
    if header_from is None:
        return DmarcResult("permerror", "", reason="not exactly one From domain")
    try:
        record, at_org = _find_record(resolver, header_from)
    except lookup.TempFail as exc:
        return DmarcResult("temperror", header_from, reason=str(exc))
    if record is None:
        return DmarcResult("none", header_from, reason="no DMARC record")
    spf_ok = (
        spf is not None
        and spf.result == "pass"
        and spf.scope == "mailfrom"
        and _aligned(spf.domain, header_from, record.aspf)
    )
    dkim_ok = any(
        d.result == "pass" and _aligned(d.domain, header_from, record.adkim) for d in dkim
    )
    if spf_ok or dkim_ok:
        return DmarcResult("pass", header_from, "none")
    policy = record.sp if at_org and record.sp is not None else record.p
    return DmarcResult("fail", header_from, policy, "no aligned SPF or DKIM pass")
