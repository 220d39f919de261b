"""The Authentication-Results header field (RFC 8601), written and defended.

Owns: writing one Authentication-Results field from the SPF, DKIM and DMARC results
(section 2.2 syntax, folded with CRLF TAB, values quoted where they are not tokens), and
removing Authentication-Results fields that claim our own authserv-id from incoming
content (section 5: a receiver must not trust, and should delete, such forgeries), as
bytes, without re-serialising the message. Does not own the checks.
"""

from __future__ import annotations

import re

from posthorn.mailauth.dkim_check import DkimResult
from posthorn.mailauth.dmarc import DmarcResult
from posthorn.mailauth.spf_check import SpfResult
from posthorn.message.headers import header_block

__all__ = ["authentication_results", "strip_forged"]

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~@/]+\Z")


def _value(text: str) -> str:
    """A pvalue: as is when it is a token (or an addr-spec), else a quoted string."""
    if _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    cleaned = " ".join(re.sub(r"[()\\\r\n]", " ", text).split())[:120]
    return f" ({cleaned})" if cleaned else ""


def authentication_results(
    authserv_id: str,
    spf: SpfResult | None,
    dkim: list[DkimResult] | None,
    dmarc: DmarcResult | None,
) -> bytes:
    """The whole field with its CRLF; `None` for a check that was not done."""
    methods: list[str] = []
    if spf is not None:
        prop = "smtp.mailfrom" if spf.scope == "mailfrom" else "smtp.helo"
        ident = spf.identity if spf.scope == "mailfrom" else spf.domain
        methods.append(f"spf={spf.result}{_comment(spf.reason)} {prop}={_value(ident)}")
    if dkim is not None:
        if not dkim:
            methods.append("dkim=none")
        for d in dkim:
            props = f" header.d={_value(d.domain)} header.s={_value(d.selector)}"
            props += f" header.b={_value(d.b)}" if d.b else ""
            methods.append(f"dkim={d.result}{_comment(d.reason)}{props}")
    if dmarc is not None:
        note = f"p={dmarc.policy}" if dmarc.result == "fail" else dmarc.reason
        header_from = _value(dmarc.header_from or "unknown")
        methods.append(f"dmarc={dmarc.result}{_comment(note)} header.from={header_from}")
    if not methods:
        methods.append("none")
    text = "Authentication-Results: " + authserv_id + ";\r\n\t" + ";\r\n\t".join(methods)
    return (text + "\r\n").encode("utf-8")


_FIELD = re.compile(rb"(?im)^authentication-results[ \t]*:(.*(?:\r\n[ \t].*)*)\r\n")


def strip_forged(content: bytes, authserv_id: str) -> bytes:
    """The content without Authentication-Results fields that carry our authserv-id."""
    block = header_block(content)
    if b"uthentication-" not in block and b"UTHENTICATION-" not in block:
        return content  # the common case: nothing to look at
    ours = authserv_id.lower().encode("utf-8", "replace")

    def keep(match: re.Match[bytes]) -> bytes:
        value = match.group(1).strip()
        claimed = value.split(b";", 1)[0].split(b"(", 1)[0].strip().lower()
        return b"" if claimed == ours else match.group(0)

    return _FIELD.sub(keep, block) + content[len(block) :]
