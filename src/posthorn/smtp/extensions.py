"""ESMTP capabilities: what a server advertises in its EHLO reply, both directions.

Owns: the `Capabilities` value, rendering it as EHLO keyword lines (server side) and
parsing a peer's EHLO reply into one (client side), per RFC 5321 section 4.1.1.1 and the
extension RFCs named below. Does not own policy (which extensions to offer is config).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Capabilities", "parse_ehlo"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A set of ESMTP extensions with their arguments.

    `size` None: no SIZE keyword; 0: SIZE with no fixed limit (RFC 1870 section 4).
    """

    size: int | None = None
    pipelining: bool = False  # RFC 2920
    eightbitmime: bool = False  # RFC 6152
    smtputf8: bool = False  # RFC 6531
    enhancedstatuscodes: bool = False  # RFC 2034
    chunking: bool = False  # RFC 3030
    binarymime: bool = False  # RFC 3030
    dsn: bool = False  # RFC 3461
    starttls: bool = False  # RFC 3207
    auth: tuple[str, ...] = ()  # RFC 4954 mechanisms
    etrn: bool = False  # RFC 1985
    expn: bool = False  # RFC 5321 section 3.5.2 (EXPN is an optional command)
    help: bool = False
    other: tuple[str, ...] = field(default=())  # keywords we do not model

    def keywords(self) -> list[str]:
        """The EHLO keyword lines, in a conventional order (Postfix's)."""
        lines: list[str] = []
        if self.pipelining:
            lines.append("PIPELINING")
        if self.size is not None:
            lines.append(f"SIZE {self.size}" if self.size else "SIZE")
        if self.etrn:
            lines.append("ETRN")
        if self.expn:
            lines.append("EXPN")
        if self.starttls:
            lines.append("STARTTLS")
        if self.auth:
            lines.append("AUTH " + " ".join(self.auth))
        if self.enhancedstatuscodes:
            lines.append("ENHANCEDSTATUSCODES")
        if self.eightbitmime:
            lines.append("8BITMIME")
        if self.binarymime:
            lines.append("BINARYMIME")
        if self.dsn:
            lines.append("DSN")
        if self.smtputf8:
            lines.append("SMTPUTF8")
        if self.chunking:
            lines.append("CHUNKING")
        if self.help:
            lines.append("HELP")
        lines.extend(self.other)
        return lines


def _parse_size(args: list[str]) -> int:
    if args and args[0].isdigit():
        return int(args[0])
    return 0


def parse_ehlo(lines: tuple[str, ...] | list[str]) -> Capabilities:
    """Build Capabilities from the text lines of a 250 EHLO reply (first line skipped).

    Keywords are case-insensitive (RFC 5321 section 4.1.1.1). The old `AUTH=` form some
    servers still send is folded into `auth`.
    """
    found: dict[str, object] = {}
    auth: list[str] = []
    other: list[str] = []
    flags = {
        "PIPELINING": "pipelining",
        "8BITMIME": "eightbitmime",
        "SMTPUTF8": "smtputf8",
        "ENHANCEDSTATUSCODES": "enhancedstatuscodes",
        "CHUNKING": "chunking",
        "BINARYMIME": "binarymime",
        "DSN": "dsn",
        "STARTTLS": "starttls",
        "ETRN": "etrn",
        "EXPN": "expn",
        "HELP": "help",
    }
    for line in list(lines)[1:]:
        words = line.split()
        if not words:
            continue
        keyword = words[0].upper()
        if keyword in flags:
            found[flags[keyword]] = True
        elif keyword == "SIZE":
            found["size"] = _parse_size(words[1:])
        elif keyword == "AUTH" or keyword.startswith("AUTH="):
            mechs = words[1:] if keyword == "AUTH" else [keyword[5:], *words[1:]]
            auth.extend(m.upper() for m in mechs if m.upper() not in auth)
        else:
            other.append(line)
    return Capabilities(auth=tuple(auth), other=tuple(other), **found)  # type: ignore[arg-type]
