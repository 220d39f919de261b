"""Process accounting for benchmarks: CPU seconds and peak memory of a process tree.

Reads /proc directly (Linux): utime+stime of every process in the tree (threads are
included in their process's figures), cutime+cstime for the children it has reaped, and
VmHWM (peak resident set size); and, as a cross-check, the whole machine's busy time.
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


def _times(pid: int) -> tuple[float, float]:
    """(own, reaped): the process's utime+stime, and cutime+cstime, the CPU of the
    children it has waited for (each child's own figure plus what it had reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    # Fields after the command name: utime, stime, cutime, cstime are 0-based 11 to 14.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all CPUs, all processes, the kernel's
    own threads and interrupts): /proc/stat's first line, less idle and iowait."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


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
    machine_cpu_seconds: float  # the whole machine: the load generator and kernel too
    peak_rss_kib: int  # summed over processes: overstates multi-process servers
    pss_kib: int  # at the end of the measurement, summed over processes


class Tracker:
    """CPU used by a set of root processes (and their trees) between start() and stop().

    Processes that come and go are counted too. Postfix's cleanup serves 100 messages
    (max_use) and exits, so a run of 1,500 messages outlives 15 of them; their CPU is
    gone from /proc but lands in master's cutime/cstime when master reaps them. So the
    figure is: each live process's own delta, plus the delta of what each has reaped,
    minus what a vanished process had used before start() (its whole total, own and
    reaped, went into its parent's reaped figure).
    """

    def __init__(self, *roots: int) -> None:
        self.roots = roots
        self._start: dict[int, tuple[float, float]] = {}
        self._machine = 0.0

    def _pids(self) -> list[int]:
        return [p for root in self.roots for p in tree(root)]

    def start(self) -> None:
        self._start = {pid: _times(pid) for pid in self._pids()}
        self._machine = _machine_busy()

    def stop(self) -> Usage:
        pids = self._pids()
        cpu = 0.0
        for pid in pids:
            own, reaped = _times(pid)
            own0, reaped0 = self._start.get(pid, (0.0, 0.0))
            cpu += (own - own0) + (reaped - reaped0)
        cpu -= sum(own + reaped for pid, (own, reaped) in self._start.items() if pid not in pids)
        machine = _machine_busy() - self._machine
        return Usage(cpu, machine, sum(_hwm_kib(p) for p in pids), sum(_pss_kib(p) for p in pids))
