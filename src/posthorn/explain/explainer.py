"""`posthorn explain`: walk one address through the server's own routing, step by step.

Owns: the order of the walk and putting its facts together: the destination an address
really names (`routing.relay.destination`, as at RCPT), the RCPT answer for a local
address (`Router.check_recipient`), alias, list and forward expansion
(`routing.expand.expand_recipients`, as at intake) and the aliases and forward files each
step used, the route of each final recipient (`Router.route`, as the queue runner
routes), the mailbox path the local transport would write, the remote plan of each
domain (DNS at the edge in `lookup.py`, the rest in `remote_plan.py`) and the retry
timeline. Uses the router, transport table and resolver the daemon builds, so the
explanation cannot drift from what the server does. Does not own rendering.

Raises `AddressError` for an address that cannot be parsed; everything else is a value.
"""

from __future__ import annotations

import asyncio

from posthorn.address import Address
from posthorn.delivery.local import LocalDelivery
from posthorn.delivery.remote import RemoteDelivery
from posthorn.envelope import Recipient
from posthorn.explain import remote_plan
from posthorn.explain.lookup import look_up
from posthorn.explain.model import (
    Delivery,
    Expansion,
    Explanation,
    FileAppend,
    FinalRecipient,
    Mailbox,
    PipeCommand,
    Refusal,
    Relay,
    RemotePlan,
    Verdict,
    verdict_of,
    worst,
)
from posthorn.explain.timeline import timeline
from posthorn.queue.schedule import RetryPolicy
from posthorn.routing import expand, relay
from posthorn.routing.aliases import (
    AddressTarget,
    FileTarget,
    IncludeTarget,
    LocalCopy,
    PipeTarget,
    Target,
)
from posthorn.routing.router import File, Mbox, Pipe, Refused, Remote, Router
from posthorn.routing.router import Mailbox as MailboxRoute
from posthorn.smtp.reply import Reply

__all__ = ["Explainer", "parse_address"]

# What the queue runner answers for a local address that names no mailbox.
_NO_SUCH_USER = Reply(550, "5.1.1", ("Recipient address rejected: User unknown",))


def parse_address(text: str, primary_domain: str) -> Address:
    """`bob@example.org`, `<bob@example.org>`, or a bare local part (qualified with the
    primary local domain, as local submission qualifies it). Raises AddressError."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if "@" not in text:
        text = f"{text}@{primary_domain}"
    return Address.parse(text, utf8=True)


def _target_text(target: Target) -> str:
    if isinstance(target, AddressTarget):
        return target.address
    if isinstance(target, LocalCopy):
        return f"\\{target.user}"
    if isinstance(target, FileTarget):
        return target.path
    if isinstance(target, PipeTarget):
        return f"|{target.command}"
    assert isinstance(target, IncludeTarget)
    return f":include:{target.path}"


class Explainer:
    """Explains addresses with the parts of a built daemon (`daemon.build`): its router,
    local and remote transports, and retry policy (`profile` names it, for the text)."""

    def __init__(
        self,
        router: Router,
        local: LocalDelivery,
        remote: RemoteDelivery,
        policy: RetryPolicy,
        profile: str,
    ) -> None:
        self.router = router
        self.local = local
        self.remote = remote
        self.policy = policy
        self.profile = profile

    async def explain(self, address: Address, sender: Address | None) -> Explanation:
        router = self.router
        destination = relay.destination(address, router.is_local)
        local = router.is_local(destination)
        base = Explanation(str(address), str(destination), local)
        refusal = router.check_recipient(destination) if local else None
        if refusal is not None:
            # RFC 5321 section 3.3: the RCPT is refused; nothing is queued.
            return _refused(base, Refusal(refusal, at_rcpt=True))
        try:
            finals = expand.expand_recipients(
                router, [Recipient(destination)], sender, frozenset()
            )
        except expand.ExpansionError as exc:
            # Intake answers 451 and the client tries again later.
            return _refused(base, Refusal(Reply(451, "4.3.0", (str(exc),))))
        plans = await self._plans(finals)
        recipients = tuple(self._final(f, sender, plans) for f in finals)
        verdict = worst([r.verdict for r in recipients])
        retries = verdict in (Verdict.DELIVERABLE, Verdict.TEMPORARY)
        return Explanation(
            base.address,
            base.destination,
            local,
            recipients=recipients,
            expansions=self._expansions(destination if local else None, finals),
            timeline=timeline(self.policy, self.profile) if retries else None,
            verdict=verdict,
        )

    async def _plans(self, finals: list[expand.Final]) -> dict[str, RemotePlan]:
        """The remote plan of every domain a final recipient is relayed to, looked up at
        the same time."""
        domains = list(
            dict.fromkeys(
                route.domain
                for f in finals
                if f.recipient.route is None
                and isinstance(route := self.router.route(f.recipient.address), Remote)
            )
        )
        remote = self.remote
        targets = [remote_plan.target_of(remote.routes, d) for d in domains]
        facts = await asyncio.gather(
            *(look_up(remote.resolver, nexthop, remote.me) for nexthop, _ in targets)
        )
        return {
            domain: remote_plan.plan(domain, nexthop, target, fact, remote.config, remote.me)
            for domain, (nexthop, target), fact in zip(domains, targets, facts, strict=True)
        }

    def _final(
        self, final: expand.Final, sender: Address | None, plans: dict[str, RemotePlan]
    ) -> FinalRecipient:
        recipient = final.recipient
        delivery = self._delivery(recipient, plans)
        if isinstance(delivery, Refusal):
            verdict = verdict_of(delivery.reply)
        elif isinstance(delivery, Relay):
            verdict = delivery.plan.verdict
        else:
            verdict = Verdict.DELIVERABLE
        changed = final.sender != sender and final.sender is not None
        return FinalRecipient(
            address=str(recipient.address),
            via=tuple(str(a) for a in final.chain),
            sender=str(final.sender) if changed else None,
            delivery=delivery,
            verdict=verdict,
        )

    def _delivery(self, recipient: Recipient, plans: dict[str, RemotePlan]) -> Delivery:
        # A route fixed at intake wins over the address's own, as in the queue runner.
        route = recipient.route or self.router.route(recipient.address)
        if route is None:
            return Refusal(_NO_SUCH_USER)
        if isinstance(route, Refused):
            return Refusal(route.reply)
        if isinstance(route, File):
            return FileAppend(route.path, route.user)
        if isinstance(route, Pipe):
            return PipeCommand(route.command, route.user)
        if isinstance(route, Remote):
            return Relay(plans[route.domain])
        if isinstance(route, Mbox):
            return Mailbox(route.user, "mbox", str(self.local.mbox_for(route.user)))
        assert isinstance(route, MailboxRoute)
        return Mailbox(route.user, "maildir", str(self.local.maildir_for(route.user)))

    def _expansions(
        self, destination: Address | None, finals: list[expand.Final]
    ) -> tuple[Expansion, ...]:
        """The aliases and forward files on the way to the final recipients, in order:
        the local destination's own first (its file or pipe targets leave no chain)."""
        first = [destination] if destination is not None else []
        seen = dict.fromkeys([*first, *(a for f in finals for a in f.chain)])
        found = [self._expansion(a) for a in seen]
        return tuple(e for e in found if e is not None)

    def _expansion(self, address: Address) -> Expansion | None:
        router = self.router
        alias = router.alias_for(address)
        if alias is not None:
            owner = router.owner_for(address)
            return Expansion(
                address=str(address),
                kind="alias",
                source=f"{router.policy.file} line {alias.line}",
                targets=tuple(_target_text(t) for t in alias.targets),
                owner=None if owner is None else str(owner),
            )
        mailbox = router.mailbox_of(address)
        forward = router.forward_for(mailbox) if mailbox is not None else None
        if forward is None:
            return None
        return Expansion(
            address=str(address),
            kind="forward file",
            source=forward.path,
            targets=tuple(_target_text(t) for t in forward.targets),
        )


def _refused(base: Explanation, refusal: Refusal) -> Explanation:
    return Explanation(
        base.address,
        base.destination,
        base.local,
        refusal=refusal,
        verdict=verdict_of(refusal.reply),
    )
