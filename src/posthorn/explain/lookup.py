"""The DNS edge of `posthorn explain`: the lookups a delivery to one destination makes.

Owns: asking DNS, through the `MxResolver` the remote transport uses, for the MX records
of a next hop (with the CNAME chain on the way) and for the addresses of every host a
delivery could try, all hosts at once; the answers come back as one `DnsFacts` value.
Does not own what the answers mean (`remote_plan.py`).

Never raises for DNS trouble: NXDOMAIN, SERVFAIL and timeouts are values (`posthorn.dns`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from posthorn.dns import MxResolver
from posthorn.explain.remote_plan import DnsFacts, candidates
from posthorn.routing.nexthop import Nexthop

__all__ = ["look_up"]


async def look_up(resolver: MxResolver, nexthop: Nexthop, me: Iterable[str]) -> DnsFacts:
    cnames: list[tuple[str, str]] = []
    answer = await resolver.mx(nexthop.host, cnames) if nexthop.mx else None
    found = candidates(nexthop, answer, me)
    hosts = found if isinstance(found, list) else []
    chains: dict[str, list[tuple[str, str]]] = {host: [] for host in hosts}
    answers = await asyncio.gather(*(resolver.addresses(h, chains[h]) for h in hosts))
    return DnsFacts(
        mx=answer,
        cnames=tuple(cnames),
        addresses=dict(zip(hosts, answers, strict=True)),
        host_cnames={host: tuple(chain) for host, chain in chains.items()},
    )
