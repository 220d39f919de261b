"""Process accounting for benchmarks: CPU seconds and peak memory of a process tree.

Reads /proc directly (Linux): utime+stime of every process in the tree (threads are
included in their process's figures), and VmHWM (peak resident set size).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids = task / "children"
        if kids.exists():
            out += [int(p) for p in kids.read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
            todo += _children(current)
    return found


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    return (int(fields[11]) + int(fields[12])) / _TICK


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes that share them,
    so that summing over Postfix's many processes does not count libraries 40 times."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Usage:
    cpu_seconds: float
    peak_rss_kib: int  # summed over processes: overstates multi-process servers
    pss_kib: int  # at the end of the measurement, summed over processes


class Tracker:
    """CPU used by a set of root processes (and their trees) between start() and stop().

    Processes that exit in between are lost to the count; the servers measured here keep
    their workers alive for the duration of a run.
    """

    def __init__(self, *roots: int) -> None:
        self.roots = roots
        self._start: dict[int, float] = {}

    def _pids(self) -> list[int]:
        return [p for root in self.roots for p in tree(root)]

    def start(self) -> None:
        self._start = {pid: _cpu(pid) for pid in self._pids()}

    def stop(self) -> Usage:
        pids = self._pids()
        cpu = sum(_cpu(pid) - self._start.get(pid, 0.0) for pid in pids)
        return Usage(cpu, sum(_hwm_kib(p) for p in pids), sum(_pss_kib(p) for p in pids))
