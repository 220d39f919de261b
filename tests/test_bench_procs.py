"""The benchmark's CPU accounting (bench/procs.py) counts children that exit mid-run.

Postfix's cleanup exits after 100 messages; a tracker that only summed the processes alive
at the end undercounted Postfix's CPU by half. These tests build such a tree for real: a
parent that starts short-lived children, each burning CPU, and reaps them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from procs import Tracker

# Each burn uses this much CPU, measured by the burning process's own clock.
BURN = 0.3
BURN_CODE = f"end = time.process_time() + {BURN}\\nwhile time.process_time() < end: pass\\n"


def _measure(parent_code: str, ready: str) -> float:
    """Start a parent running `parent_code`, wait for its `ready` line, then measure the CPU
    of its tree from "go" to its "done" line. It stays alive until the end, as Postfix's
    master does, so that it has reaped its children when the tracker stops."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(parent_code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdin is not None
    assert parent.stdout is not None
    try:
        assert parent.stdout.readline() == ready
        tracker = Tracker(parent.pid)
        tracker.start()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "done\n"
        return tracker.stop().cpu_seconds
    finally:
        parent.stdin.write("end\n")
        parent.stdin.flush()
        parent.wait(10)


def test_reaped_children_are_counted() -> None:
    parent = f"""
        import subprocess, sys
        child = "import time\\n{BURN_CODE}"
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(3):
            subprocess.run([sys.executable, "-c", child], check=True)
        print("done", flush=True)
        sys.stdin.readline()
    """
    cpu = _measure(parent, "ready\n")
    # Three children of BURN each (plus their interpreters' start-up), none alive at stop().
    assert 3 * BURN <= cpu < 3 * BURN + 1.5


def test_cpu_used_before_start_by_a_child_that_exits_is_not_counted() -> None:
    parent = f"""
        import subprocess, sys
        child = "import sys, time\\n{BURN_CODE}print('warm', flush=True)\\n"
        child += "sys.stdin.readline()\\n{BURN_CODE}"
        subprocess.run([sys.executable, "-c", child], stdin=sys.stdin, check=True)
        print("done", flush=True)
        sys.stdin.readline()
    """
    cpu = _measure(parent, "warm\n")
    # The child burns once before start() and once after; only the second is counted.
    assert BURN * 0.9 <= cpu < 2 * BURN
