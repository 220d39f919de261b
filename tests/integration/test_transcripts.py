"""Dialogues in tests/transcripts/*.txt, replayed against a real server line by line
(see tests/support/transcript.py for the format). The seed lecture's transcripts are
among them; its VRFY/EXPN dialogue is in test_vrfy_expn.py, with the users it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.server import Server
from support.transcript import play

HERE = Path(__file__).resolve().parent.parent / "transcripts"


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.txt")))
def test_transcript(make_server: object, name: str) -> None:
    server: Server = make_server()  # type: ignore[operator]
    play(server, (HERE / name).read_text())
