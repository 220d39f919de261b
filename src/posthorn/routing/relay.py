"""Relay control: which destination a recipient really names, and who may send there.

Owns: seeing through the old routing syntaxes that hide a second destination inside the
local part of an address in a local domain (the percent hack `user%other@local`, UUCP
bang paths `other!user@local`, quoted local parts holding `@`: `"user@other"@local`),
the way Postfix's trivial-rewrite resolves them (allow_percent_hack, swap_bangpath,
resolve_dequoted_address), so that the relay decision and the queued recipient are about
the same destination; and the relay rule itself (RFC 5321 section 3.6.2, RFC 2505
section 2.4): a non-local destination needs a trusted client network or AUTH.

Source routes (`@local:user@other`) are stripped by the grammar (RFC 5321 appendix C),
trailing dots and letter case are removed by `Address.domain_key`, and U-labels become
A-labels there too, so every comparison here is on the one normalised key that routing
also uses. Address literals are never local unless listed as local domains. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from posthorn.address import Address, AddressError, is_domain, parse_ip

__all__ = ["destination", "may_relay"]

_MAX_HOPS = 8  # nested hacks (a%b%c@local) are resolved at most this deep


def _valid_domain(text: str) -> bool:
    text = text.rstrip(".") if not text.startswith("[") else text
    if text.startswith("[") and text.endswith("]"):
        try:
            Address.parse(f"x@{text}")
        except AddressError:
            return False
        return True
    return is_domain(text, utf8=True)


def _hidden(local: str) -> Address | None:
    """The address a local part hides, or None when it hides none.

    The rightmost '@' or '%' splits user from domain (as sendmail and Postfix do); a bang
    path is `host!user`, first '!' first. A "domain" that is not one hides nothing.
    """
    for sep in ("@", "%"):
        user, found, domain = local.rpartition(sep)
        if found and user and _valid_domain(domain):
            return Address(user, domain.rstrip(".") if not domain.startswith("[") else domain)
        if found:
            return None
    host, found, user = local.partition("!")
    if found and user and _valid_domain(host):
        return Address(user, host)
    return None


def destination(address: Address, is_local: Callable[[Address], bool]) -> Address:
    """The address mail for `address` would really go to.

    Only a local domain's local part is looked into: for a remote domain the local part
    belongs to that domain's own rules.
    """
    for _ in range(_MAX_HOPS):
        if address.domain and not is_local(address):
            return address
        hidden = _hidden(address.local)
        if hidden is None:
            return address
        address = hidden
    return address


def may_relay(
    client_address: str,
    authenticated: bool,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    """True when the client may send to non-local destinations."""
    if authenticated:
        return True
    ip = parse_ip(client_address)
    return ip is not None and any(ip in net for net in trusted)
