"""Dialogues in tests/transcripts/*.txt, replayed against a real server line by line.

`C:` lines are sent (with CRLF), consecutive `S:` lines form one expected reply; `{*}`
matches any text. The seed lecture's transcripts are among them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.raw import RawClient
from support.server import Server

HERE = Path(__file__).resolve().parent.parent / "transcripts"
CONFIG = {
    "seed-vrfy-expn.txt": """
        [server]
        hostname = "mx.test"
        [local]
        domains = ["mx.test"]
        users = ["rstevens"]
        accept_any_local_user = false
    """,
}


def _pattern(lines: list[str]) -> re.Pattern[str]:
    return re.compile(
        "\n".join(re.escape(line).replace(r"\{\*\}", ".*") for line in lines) + r"\Z"
    )


def replay(server: Server, script: str) -> None:
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

    for raw in script.splitlines():
        if not raw or raw.startswith("#"):
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
            raise AssertionError(f"bad transcript line {raw!r}")
    client.close()


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.txt")))
def test_transcript(make_server: object, name: str) -> None:
    server = make_server(CONFIG.get(name, ""))  # type: ignore[operator]
    replay(server, (HERE / name).read_text())
