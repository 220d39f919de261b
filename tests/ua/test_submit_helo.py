"""`posthorn send` against a server without ESMTP: Postfix's smtp-sink with -e.

The server answers EHLO with 500, so the client falls back to HELO (RFC 5321 section
3.2) and, with no PIPELINING, sends one command at a time: the seed's classic dialogue.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import env, free_port, posthorn_cmd, wait_for


@pytest.fixture
def sink_port() -> Iterator[int]:
    port = free_port()
    user = ["-u", "nobody"] if os.getuid() == 0 else []  # smtp-sink will not run as root
    proc = subprocess.Popen(
        ["smtp-sink", *user, "-e", f"127.0.0.1:{port}", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def accepting() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        probe = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{port}", "--quit-after", "CONNECT"],
            capture_output=True,
        )
        return probe.returncode == 0

    try:
        wait_for(accepting, what="smtp-sink")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_helo_fallback_and_one_command_at_a_time(sink_port: int, tmp_path: Path) -> None:
    (tmp_path / "posthorn.toml").write_text('[server]\nhostname = "sun.tuc.noao.edu"\n')
    result = subprocess.run(
        posthorn_cmd(
            "send", "-v", "--server", f"127.0.0.1:{sink_port}", "-s", "testing",
            "-r", "rstevens@sun.tuc.noao.edu", "estevens@noao.edu",
            "--config", str(tmp_path / "posthorn.toml"), "--data-dir", str(tmp_path / "d"),
        ),
        input="1, 2, 3.\n", capture_output=True, text=True, env=env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    patterns = [
        rf"Connecting to 127\.0\.0\.1 port {sink_port} via tcp\.\.\.",
        r"Trying 127\.0\.0\.1\.\.\. connected\.",
        "220 .*",
        ">>> EHLO sun.tuc.noao.edu",
        "500 .*",
        ">>> HELO sun.tuc.noao.edu",
        "250 .*",
        r">>> MAIL FROM:<rstevens@sun\.tuc\.noao\.edu>",  # no SIZE: not offered
        "250 .*",
        r">>> RCPT TO:<estevens@noao\.edu>",
        "250 .*",
        ">>> DATA",
        "354 .*",
        ">>> .",
        "250 .*",
        ">>> QUIT",
        "221 .*",
        r"Sent \(.*\)",
    ]
    lines = result.stdout.splitlines()
    assert len(lines) == len(patterns), result.stdout
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
