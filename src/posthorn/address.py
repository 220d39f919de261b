"""Mail addresses: the `Address` value type and its RFC 5321 grammar.

Owns: parsing a Mailbox (RFC 5321 section 4.1.2, extended by RFC 6531 for UTF-8),
quoting local parts on output, address literals, and the comparison keys that routing
uses (lower-case, IDNA A-label domain). Does not own the angle-bracket Path syntax
(`posthorn.smtp.commands`) or ESMTP parameters (`posthorn.smtp.params`), nor any
routing decision.

Raises `AddressError` (a `ValueError`) for text that is not a mailbox.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

__all__ = ["Address", "AddressError", "is_domain", "normalise_domain"]


class AddressError(ValueError):
    """The text is not a valid mailbox; the message says why."""


# RFC 5322 section 3.2.3 atext; RFC 6531 section 3.3 adds any non-ASCII UTF-8 character.
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_DOT_ATOM_UTF8 = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+(?:\.[{_ATEXT}\u0080-\U0010ffff]+)*\Z")
# RFC 5321 section 4.1.2: qtextSMTP = %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP = "\" %d32-126
_QUOTED_CHAR = re.compile(r"\\[\x20-\x7e]|[\x20\x21\x23-\x5b\x5d-\x7e]")
_QUOTED_CHAR_UTF8 = re.compile(r"\\[\x20-\x7e]|[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# RFC 5321 section 4.1.3: General-address-literal = Standardized-tag ":" 1*dcontent
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+\Z")


def _is_ascii(text: str) -> bool:
    return text.isascii()


# Routing asks for the same few domains' keys many times per message (about twenty);
# the answers never change, and the cache is bounded.
@functools.lru_cache(maxsize=4096)
def normalise_domain(domain: str) -> str:
    """The comparison key of a domain: lower case, A-labels, no trailing dot.

    Address literals are returned lower-cased as they are. Raises AddressError when an
    internationalised domain cannot be converted to A-labels.
    """
    if domain.startswith("["):
        return domain.lower()
    domain = domain.rstrip(".")
    if _is_ascii(domain):
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AddressError(f"invalid internationalised domain {domain!r}") from exc


@functools.lru_cache(maxsize=4096)  # asked several times per connection; clients return
def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `text` names (a client's, as the socket gives it), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)  # every MAIL and RCPT asks; the answer never changes
def is_domain(text: str, *, utf8: bool = False) -> bool:
    """True when `text` is an RFC 5321 Domain (dot-separated LDH labels, no trailing dot).

    With `utf8`, U-labels (RFC 6531 section 3.3) are accepted when they convert to
    valid A-labels.
    """
    if not text or len(text) > 255:
        return False
    if not _is_ascii(text):
        if not utf8:
            return False
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return all(_LABEL.match(label) for label in text.split("."))


def _check_literal(literal: str) -> None:
    """Validate an address literal without its brackets (RFC 5321 section 4.1.3)."""
    if literal[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(literal[5:])
        except ValueError as exc:
            raise AddressError(f"invalid IPv6 address literal [{literal}]") from exc
        return
    if literal[:1].isdigit():
        try:
            ipaddress.IPv4Address(literal)
        except ValueError as exc:
            raise AddressError(f"invalid IPv4 address literal [{literal}]") from exc
        return
    if not _GENERAL_LITERAL.match(literal):
        raise AddressError(f"invalid address literal [{literal}]")


def _split_mailbox(text: str) -> tuple[str, str]:
    """Split at the '@' that separates local part and domain, minding quotes."""
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        else:
            raise AddressError("unterminated quoted local part")
        rest = text[i + 1 :]
        if not rest.startswith("@"):
            raise AddressError("quoted local part must be followed by '@domain'")
        return text[: i + 1], rest[1:]
    at = text.rfind("@")
    if at < 0:
        raise AddressError("missing '@domain'")
    return text[:at], text[at + 1 :]


def _parse_local(local: str, utf8: bool) -> str:
    """Return the local part's value: dot-atom as is, quoted-string unquoted."""
    if not local:
        raise AddressError("empty local part")
    if local.startswith('"'):
        inner = local[1:-1]
        pattern = _QUOTED_CHAR_UTF8 if utf8 else _QUOTED_CHAR
        pieces = pattern.findall(inner)
        if "".join(pieces) != inner:
            raise AddressError("invalid character in quoted local part")
        return "".join(p[1] if p.startswith("\\") and len(p) == 2 else p for p in pieces)
    if not _is_ascii(local) and not utf8:
        raise AddressError("non-ASCII local part without SMTPUTF8")
    if not (_DOT_ATOM_UTF8 if utf8 else _DOT_ATOM).match(local):
        raise AddressError(f"invalid local part {local!r}")
    return local


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: local part (its value, unquoted) and domain (as written).

    `domain` is empty only for the special `<Postmaster>` recipient (RFC 5321 section
    4.1.1.3). Address literals keep their brackets: `[192.0.2.1]`.
    """

    local: str
    domain: str

    @classmethod
    def parse(cls, text: str, *, utf8: bool = False) -> Address:
        """Parse `local@domain` (no angle brackets). Raises AddressError."""
        local_text, domain = _split_mailbox(text)
        local = _parse_local(local_text, utf8)
        if domain.startswith("[") and domain.endswith("]"):
            _check_literal(domain[1:-1])
        elif not is_domain(domain, utf8=utf8):
            raise AddressError(f"invalid domain {domain!r}")
        return cls(local, domain)

    @property
    def domain_key(self) -> str:
        """Lower-case A-label domain, for routing and comparisons."""
        return normalise_domain(self.domain)

    @property
    def needs_smtputf8(self) -> bool:
        """True when the address cannot be written in ASCII (RFC 6531)."""
        return not _is_ascii(self.local) or not _is_ascii(self.domain)

    def quoted_local(self) -> str:
        """The local part as it must be written on the wire (RFC 5321 section 4.1.2)."""
        if _DOT_ATOM_UTF8.match(self.local):
            return self.local
        escaped = self.local.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'

    def __str__(self) -> str:
        if not self.domain:
            return self.quoted_local()
        return f"{self.quoted_local()}@{self.domain}"

    def key(self) -> str:
        """A comparison key: local part as is (it may be case-sensitive), domain normalised."""
        if not self.domain:
            return self.local.lower()
        return f"{self.local}@{self.domain_key}"
