"""Inbound authentication checks at the end of DATA: SPF, DKIM, DMARC, then the verdict.

Owns: running the configured checks for one message in a worker thread (they block on
DNS and crypto), the actions of `[mailauth]` (none: skip the check; tag: record it in an
Authentication-Results field; reject: 550 5.7.1 on failure: SPF fail, DKIM fail with no
passing signature, DMARC fail under p=reject), and the `Verdict` the session acts on.
Does not own the checks themselves (`spf_check`, `dkim_check`, `dmarc`) or the header
syntax (`results`).

Never raises for message content or DNS trouble.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import dns.resolver

from posthorn.address import Address
from posthorn.config import MailAuthConfig
from posthorn.mailauth import results
from posthorn.mailauth.dkim_check import DkimResult, verify_dkim
from posthorn.mailauth.dmarc import DmarcResult, check_dmarc
from posthorn.mailauth.spf_check import SpfResult, check_spf
from posthorn.message.headers import header_block
from posthorn.smtp.reply import Reply

__all__ = ["InboundChecker", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    header: bytes  # the Authentication-Results field to prepend
    reject: Reply | None = None
    reject_by: str = ""


@dataclass(frozen=True, slots=True)
class _Results:
    spf: SpfResult | None
    dkim: list[DkimResult] | None
    dmarc: DmarcResult | None


class InboundChecker:
    def __init__(
        self, config: MailAuthConfig, authserv_id: str, resolver: dns.resolver.Resolver
    ) -> None:
        self.config = config
        self.authserv_id = authserv_id
        self.resolver = resolver

    @property
    def enabled(self) -> bool:
        return any(a != "none" for a in (self.config.spf, self.config.dkim, self.config.dmarc))

    def _run(self, ip: str, helo: str, sender: Address | None, content: bytes) -> _Results:
        cfg = self.config
        spf = check_spf(self.resolver, ip, sender, helo) if cfg.spf != "none" else None
        want_dkim = cfg.dkim != "none" or cfg.dmarc != "none"
        dkim = verify_dkim(self.resolver, content) if want_dkim else None
        dmarc = None
        if cfg.dmarc != "none":
            dmarc = check_dmarc(self.resolver, header_block(content), spf, dkim or [])
        return _Results(spf, dkim if cfg.dkim != "none" else None, dmarc)

    def _reject(self, found: _Results) -> tuple[Reply, str] | None:
        cfg = self.config
        if cfg.spf == "reject" and found.spf is not None and found.spf.result == "fail":
            # RFC 7208 section 8.4: a "fail" may be rejected with 550 5.7.1 (or 5.7.23).
            text = f"SPF: {found.spf.domain} does not allow this client to send for it"
            return Reply(550, "5.7.1", (text,)), "SPF"
        dkim = found.dkim or []
        failed = any(d.result == "fail" for d in dkim)
        if cfg.dkim == "reject" and failed and not any(d.result == "pass" for d in dkim):
            return Reply(550, "5.7.1", ("DKIM: signature verification failed",)), "DKIM"
        dmarc = found.dmarc
        failed_reject = dmarc is not None and dmarc.result == "fail" and dmarc.policy == "reject"
        if cfg.dmarc == "reject" and dmarc is not None and failed_reject:
            # RFC 7489 section 6.6.4 (and RFC 7372): reject what the domain asks us to.
            text = f"DMARC: rejected by the policy of {dmarc.header_from}"
            return Reply(550, "5.7.1", (text,)), "DMARC"
        return None

    async def check(
        self, *, client_address: str, helo: str, sender: Address | None, content: bytes
    ) -> Verdict:
        if not self.enabled:
            return Verdict(b"")
        found = await asyncio.to_thread(self._run, client_address, helo, sender, content)
        header = results.authentication_results(
            self.authserv_id, found.spf, found.dkim, found.dmarc
        )
        refusal = self._reject(found)
        if refusal is not None:
            return Verdict(header, refusal[0], refusal[1])
        return Verdict(header)

    def strip_forged(self, content: bytes) -> bytes:
        return results.strip_forged(content, self.authserv_id)
