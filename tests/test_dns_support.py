"""The loopback DNS server that relay and SPF tests use, and the resolver built from config."""

from __future__ import annotations

import asyncio

import dns.exception
import dns.resolver
import pytest

from posthorn.config import DnsConfig
from posthorn.dns import make_resolver, parse_nameserver
from support.dns import dns_server

ZONE = """
example.test. 300 IN MX 10 mx1.example.test.
example.test. 300 IN MX 20 mx2.example.test.
mx1.example.test. 300 IN A 127.0.0.1
alias.test. 300 IN CNAME example.test.
"""


def test_parse_nameserver() -> None:
    assert parse_nameserver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("2001:db8::1") == ("2001:db8::1", 53)


def test_resolver_from_config_asks_the_loopback_server() -> None:
    async def lookups(address: str) -> tuple[list[str], list[str]]:
        resolver = make_resolver(DnsConfig(nameservers=(address,), timeout=2))
        mx = await resolver.resolve("example.test", "MX")
        via_cname = await resolver.resolve("alias.test", "MX")
        return sorted(str(r) for r in mx), sorted(str(r) for r in via_cname)

    with dns_server(ZONE) as server:
        direct, via_cname = asyncio.run(lookups(server.address))
        assert direct == ["10 mx1.example.test.", "20 mx2.example.test."]
        assert via_cname == direct
        assert ("example.test", "MX") in server.queries


def test_failures_are_distinguishable() -> None:
    async def outcome(address: str, name: str) -> str:
        resolver = make_resolver(DnsConfig(nameservers=(address,), timeout=1))
        try:
            await resolver.resolve(name, "MX")
        except dns.exception.DNSException as exc:
            return type(exc).__name__
        return "ok"

    with dns_server(ZONE) as server:
        server.resolver.servfail.add("broken.test")
        server.resolver.timeout.add("silent.test")
        assert asyncio.run(outcome(server.address, "nowhere.test")) == "NXDOMAIN"
        assert asyncio.run(outcome(server.address, "broken.test")) == "NoNameservers"
        assert asyncio.run(outcome(server.address, "silent.test")) == "LifetimeTimeout"


@pytest.mark.parametrize("bad", ["x:y"])
def test_bad_nameserver_config_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="nameservers"):
        DnsConfig(nameservers=(bad,))
