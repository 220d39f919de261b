"""xtext (RFC 3461 section 4): the encoding of ENVID, ORCPT and AUTH= parameter values.

Owns: encode and decode. Raises `ValueError` from `decode` for malformed xtext.
"""

from __future__ import annotations

import re

__all__ = ["decode", "encode"]

_HEXCHAR = re.compile(r"\+([0-9A-F]{2})")


def encode(text: str) -> str:
    """Encode: '+', '=' and characters outside '!'..'~' become '+XX' (UTF-8 bytes)."""
    out = []
    for byte in text.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def decode(text: str) -> str:
    """Decode xtext; a '+' must be followed by two upper-case hex digits."""
    if "+" not in text:
        return text
    out = bytearray()
    pos = 0
    for match in _HEXCHAR.finditer(text):
        literal = text[pos : match.start()]
        if "+" in literal:
            raise ValueError(f"malformed xtext: {text!r}")
        out += literal.encode("utf-8")
        out.append(int(match.group(1), 16))
        pos = match.end()
    if "+" in text[pos:]:
        raise ValueError(f"malformed xtext: {text!r}")
    out += text[pos:].encode("utf-8")
    return out.decode("utf-8", "replace")
