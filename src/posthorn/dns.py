"""DNS: the resolver Posthorn uses for every lookup, built from config.

Owns: constructing a dnspython asynchronous resolver that asks the configured name
servers (HOST or HOST:PORT, so sites and tests can point at their own server) or those of
/etc/resolv.conf, with one overall timeout. Does not own what is asked: MX ordering,
SPF and the like live with the code that needs them and take the resolver as a value.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.resolver

from posthorn.config import DnsConfig

__all__ = ["make_resolver", "parse_nameserver"]


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
