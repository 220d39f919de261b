"""Where remote mail for a domain goes next: the transport table of `[routes]`.

Owns: the `Nexthop` value, the grammar of a route target (Postfix's transport(5)
notation: `smtp:[host]:port` names a relay host and skips MX lookup, `smtp:host:port`
looks up the MX records of `host`), and the lookup of a domain in the table (the exact
domain, then `*`, the smart host for everything else). Pure: takes text, not files. Does
not own DNS or delivery.

Raises `ValueError` from `parse_nexthop` for a target it cannot read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Nexthop", "TransportTable", "parse_nexthop"]

_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class Nexthop:
    """A destination to send to.

    `mx` True: look up the MX records of `host` (the recipient domain, or the name a
    route gives). False: `host` is the relay itself (a name with A/AAAA, or an IP).
    `port` None: the configured SMTP port (`smtp_client.port`).
    """

    host: str
    port: int | None = None
    mx: bool = True

    @property
    def label(self) -> str:
        """The destination as written in routes and logs: `[relay]:2526`, `example.org`."""
        host = f"[{self.host}]" if not self.mx else self.host
        return f"{host}:{self.port}" if self.port is not None else host


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def parse_nexthop(target: str) -> Nexthop:
    """'smtp:[192.0.2.1]:2526', 'smtp:[relay.example]', 'smtp:example.org:25' -> Nexthop."""
    transport, sep, rest = target.partition(":")
    if not sep or transport.lower() != "smtp":
        raise ValueError(f"route must look like smtp:[host]:port, got {target!r}")
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ValueError(f"unbalanced brackets in {target!r}")
        port = _port(tail[1:]) if tail else None
        mx = False
    else:
        host, colon, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        port = _port(port_text) if colon else None
        mx = True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise ValueError(f"bad host name {host!r} in {target!r}") from None
    else:
        mx = False  # an address has no MX records
    return Nexthop(host.lower().rstrip("."), port, mx)


class TransportTable:
    """The parsed `[routes]` section: domain -> Nexthop, `*` for the rest."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        self.routes = {k.lower().rstrip("."): parse_nexthop(v) for k, v in routes.items()}

    def lookup(self, domain: str) -> Nexthop:
        """The route of `domain`; without an entry (and no `*`), its own MX records."""
        key = domain.lower().rstrip(".")
        found = self.routes.get(key) or self.routes.get("*")
        if found is not None:
            return found
        if key.startswith("[") and key.endswith("]"):
            # RFC 5321 section 4.1.3: an address literal is the host itself, no MX lookup.
            literal = key[1:-1]
            return Nexthop(literal[5:] if literal.startswith("ipv6:") else literal, None, False)
        return Nexthop(key)
