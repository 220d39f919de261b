"""Play an SMTP transcript (`C:` lines sent, `S:` lines expected) against a real server.

The format of the seed lecture and of RFC 5321's examples: one line per protocol line,
`S:` what the server must send, word for word, `C:` what the client sends.
"""

from __future__ import annotations

import socket
import textwrap

from support.server import Server


def play(server: Server, transcript: str, timeout: float = 10.0) -> None:
    lines = [line for line in textwrap.dedent(transcript).strip().splitlines() if line.strip()]
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        for number, line in enumerate(lines, 1):
            who, _, text = line.partition(": ")
            if who == "C":
                sock.sendall(text.encode() + b"\r\n")
            elif who == "S":
                got = reader.readline().decode("utf-8", "replace").rstrip("\r\n")
                assert got == text, f"line {number}: expected {text!r}, got {got!r}"
            else:
                raise ValueError(f"line {number}: not a transcript line: {line!r}")
