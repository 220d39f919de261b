"""Play an SMTP transcript (`C:` lines sent, `S:` lines expected) against a real server.

The format of the seed lecture and of RFC 5321's examples: one line per protocol line,
`S:` what the server must send, word for word (`{*}` matches any text), `C:` what the
client sends. Consecutive `C:` lines go out together, as a pipelining client sends them;
consecutive `S:` lines form one reply. Lines starting with `#` are comments.
"""

from __future__ import annotations

import re
import textwrap

from support.raw import RawClient
from support.server import Server


def _pattern(lines: list[str]) -> re.Pattern[str]:
    escaped = (re.escape(line).replace(r"\{\*\}", ".*") for line in lines)
    return re.compile("\n".join(escaped) + r"\Z")


def play(server: Server, transcript: str) -> None:
    client = RawClient(server.host, server.port)
    pending = b""
    expected: list[str] = []

    def check() -> None:
        nonlocal pending
        if pending:
            client.send(pending)
            pending = b""
        got = client.reply()
        assert _pattern(expected).match(got), f"expected {expected}, got {got!r}"
        expected.clear()

    for raw in textwrap.dedent(transcript).strip().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        kind, _, text = raw.partition(":")
        text = text[1:] if text.startswith(" ") else text
        if kind == "C":
            if expected:
                check()
            pending += text.encode() + b"\r\n"
        elif kind == "S":
            expected.append(text)
            if re.match(r"\d{3}( |$)", text):
                check()
        else:
            raise AssertionError(f"not a transcript line: {raw!r}")
    client.close()
