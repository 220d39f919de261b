"""Run mutt (Debian's) non-interactively on a mailbox, under a pseudo-terminal.

mutt has no batch mode for reading, so it runs with a pushed key sequence: tag every
message, copy the tagged ones into a Maildir, quit. What arrives in that Maildir is what
mutt parsed out of the mailbox. Every wait has a deadline.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path


def _copied(out: Path) -> int:
    return sum(1 for p in out.glob("*/*") if p.is_file()) if out.is_dir() else 0


def copy_all(mailbox: Path, out: Path, expected: int, timeout: float = 20.0) -> str:
    """mutt opens `mailbox` read-only and copies all its messages into the Maildir
    `out`; returns mutt's screen output (for failure messages).

    Once `expected` messages have arrived (Maildir files appear whole), mutt is given a
    moment to quit and is then stopped: on a loaded machine it sometimes lingers after
    its screen is closed, and what it wrote is all the test needs."""
    keys = f"<tag-pattern>~A<enter><tag-prefix><copy-message>{out}<enter><quit>"
    cmd = [
        "mutt", "-n", "-F", "/dev/null", "-R", "-f", str(mailbox),
        "-e", f"set folder={out.parent} mbox_type=Maildir sleep_time=0",
        "-e", "set confirmcreate=no confirmappend=no",
        "-e", f'push "{keys}"',
    ]  # fmt: skip
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="vt100", HOME=str(out.parent), MAIL=str(mailbox))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _copied(out) >= expected:
                deadline = min(deadline, time.monotonic() + 2.0)
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if _copied(out) < expected:
            raise AssertionError(f"mutt copied {_copied(out)} of {expected}:\n{screen!r}")
    finally:
        os.close(master)
    return screen.decode(errors="replace")
