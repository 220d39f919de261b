"""Durable accept: messages per second, CPU per message and memory, per server and mode.

Each run starts every server afresh (Posthorn in hold mode and Postfix with HOLD, so
both only accept and queue) and drives each mode with Postfix's smtp-source. Ratios to
Postfix are taken within a run, then the median over runs.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import servers
from procs import Tracker


@dataclass(frozen=True)
class Mode:
    name: str
    sessions: int
    size: int
    reuse: bool
    count: int
    only: tuple[str, ...] = ()


WARM_UP = Mode("warm-up", 20, 1024, True, 1000)
WORKERS = int(os.environ.get("POSTHORN_BENCH_WORKERS", "2"))
MULTI = f"posthorn-{WORKERS}w"  # Posthorn with [server] workers = WORKERS
POSTHORNS = ("posthorn", MULTI)

MODES = [
    Mode("reuse, 20, 1 KB", 20, 1024, True, 4000),
    Mode("reuse, 20, 100 KB", 20, 102_400, True, 800),
    Mode("1 msg/conn, 20, 1 KB", 20, 1024, False, 3000),
    Mode("reuse, 1, 1 KB", 1, 1024, True, 1500),
    Mode("reuse, 200, 1 KB", 200, 1024, True, 4000, only=POSTHORNS),
]
# The rest of the grid (1 and 20 sessions, 1 and 100 KB, with and without reuse),
# with `--grid`, after the modes above. Not by default: held mail stays queued, these
# add about 150 MB per server and run, and on this VM's disk the later runs of a set
# slow down with what the earlier ones left (RESULTS.md).
GRID = [
    Mode("reuse, 1, 100 KB", 1, 102_400, True, 400),
    Mode("1 msg/conn, 1, 1 KB", 1, 1024, False, 800),
    Mode("1 msg/conn, 20, 100 KB", 20, 102_400, False, 800),
    Mode("1 msg/conn, 1, 100 KB", 1, 102_400, False, 300),
]

Launcher = Callable[[Path], contextlib.AbstractContextManager[servers.Running]]
SERVERS: dict[str, Launcher] = {
    "posthorn": lambda work: servers.posthorn(work, hold=True),
    MULTI: lambda work: servers.posthorn(work, hold=True, workers=WORKERS),
    "postfix": lambda work: servers.postfix(work),
    "aiosmtpd": servers.aiosmtpd,
    "smtp-sink": servers.smtp_sink,
}

Results = dict[str, dict[str, list[dict[str, float]]]]


def smtp_source(port: int, mode: Mode, recipient: str) -> float:
    """Drive one mode; returns messages per second."""
    args = ["smtp-source", "-s", str(mode.sessions), "-m", str(mode.count), "-l", str(mode.size),
            "-M", "client.bench", "-f", "load@client.bench", "-t", recipient]  # fmt: skip
    if mode.reuse:
        args.append("-d")
    start = time.monotonic()
    subprocess.run([*args, f"127.0.0.1:{port}"], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return mode.count / (time.monotonic() - start)


def runs(count: int, work: Path, names: list[str], modes: list[Mode]) -> Results:
    results: Results = {}
    for run in range(count):
        for name in names:
            with SERVERS[name](work / f"{name}-{run}") as srv:
                # Every server first takes a burst that is not measured, so that the first
                # mode does not also measure start-up (empty caches, a new queue file).
                smtp_source(srv.port, WARM_UP, "bob@localhost")
                for mode in modes:
                    if mode.only and name not in mode.only:
                        continue
                    tracker = Tracker(*srv.pids)
                    tracker.start()
                    rate = smtp_source(srv.port, mode, "bob@localhost")
                    usage = tracker.stop()
                    figure = {"rate": rate, "cpu_per_1000": usage.cpu_seconds * 1000 / mode.count,
                              "machine_per_1000": usage.machine_cpu_seconds * 1000 / mode.count,
                              "rss_mib": usage.peak_rss_kib / 1024,
                              "pss_mib": usage.pss_kib / 1024}  # fmt: skip
                    results.setdefault(name, {}).setdefault(mode.name, []).append(figure)
                    print(f"run {run + 1} {name:12} {mode.name:22} {rate:8.0f} msg/s", flush=True)
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(ours: list[float], theirs: list[float]) -> str:
    """Median of the per-run ratios (runs are paired: same run, same machine state)."""
    pairs = [a / b for a, b in zip(ours, theirs, strict=False) if b]
    return f"{median(pairs):.2f}x" if pairs else "-"


def table(results: Results) -> str:
    names = list(results)
    # The modes that were run, in their order (the grid's only with `--grid`).
    modes = [m for m in MODES + GRID if any(m.name in results[n] for n in names)]
    mine = [n for n in POSTHORNS if n in results]
    head = names + [f"{n} / postfix" for n in mine if "postfix" in results]
    lines = ["| mode | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for mode in modes:
        rates = {n: [f["rate"] for f in results[n].get(mode.name, [])] for n in names}
        cells = [f"{median(rates[n]):,.0f}" if rates[n] else "-" for n in names]
        if "postfix" in results:
            cells += [ratio(rates[n], rates["postfix"]) for n in mine]
        lines.append(f"| {mode.name} | " + " | ".join(cells) + " |")
    lines += ["", "CPU seconds per 1,000 messages (the server's processes, exited ones too):", ""]
    lines += ["| mode | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for mode in modes:
        cpus = {n: [f["cpu_per_1000"] for f in results[n].get(mode.name, [])] for n in names}
        cells = [f"{median(cpus[n]):.2f}" if cpus[n] else "-" for n in names]
        lines.append(f"| {mode.name} | " + " | ".join(cells) + " |")
    lines += ["", "| server | CPU s per 1,000 msgs (reuse, 1, 1 KB) | whole machine, client "
              "included | peak RSS MiB (sum over processes) | PSS MiB |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        figures = results[name].get("reuse, 1, 1 KB", [])
        cpu = median([f["cpu_per_1000"] for f in figures])
        machine = median([f.get("machine_per_1000", float("nan")) for f in figures])
        rss = max((f["rss_mib"] for m in results[name].values() for f in m), default=0.0)
        pss = max((f["pss_mib"] for m in results[name].values() for f in m), default=0.0)
        lines.append(f"| {name} | {cpu:.2f} | {machine:.2f} | {rss:.0f} | {pss:.0f} |")
    return "\n".join(lines)
