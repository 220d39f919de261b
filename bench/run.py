"""Posthorn's benchmark: accept rate, CPU and memory against Postfix, aiosmtpd, smtp-sink.

Run `python bench/run.py` (as root, so that a throw-away Postfix can start; see the README);
`--postgres` adds the cost of the shared queue (bench/cluster.py: one and two nodes on
PostgreSQL against one on SQLite).
Every figure is the median of --runs interleaved runs (each run starts every server
afresh and drives each mode with Postfix's smtp-source); ratios to Postfix are computed
within the same run. Prints a Markdown table; writes the raw figures to bench/out/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import latency
import servers
from procs import Tracker

OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Mode:
    name: str
    sessions: int
    size: int
    reuse: bool
    count: int
    only: tuple[str, ...] = ()


MODES = [
    Mode("reuse, 20, 1 KB", 20, 1024, True, 4000),
    Mode("reuse, 20, 100 KB", 20, 102_400, True, 800),
    Mode("1 msg/conn, 20, 1 KB", 20, 1024, False, 3000),
    Mode("reuse, 1, 1 KB", 1, 1024, True, 1500),
    Mode("reuse, 200, 1 KB", 200, 1024, True, 4000, only=("posthorn",)),
]

Launcher = Callable[[Path], contextlib.AbstractContextManager[servers.Running]]
SERVERS: dict[str, Launcher] = {
    "posthorn": lambda work: servers.posthorn(work, hold=True),
    "postfix": lambda work: servers.postfix(work),
    "aiosmtpd": servers.aiosmtpd,
    "smtp-sink": servers.smtp_sink,
}


def check_tools() -> list[str]:
    """What is missing, each with how to install it."""
    missing = []
    for tool, how in [
        ("smtp-source", "apt-get install postfix (provides smtp-source and smtp-sink)"),
        ("postfix", "apt-get install postfix"),
        ("script", "apt-get install bsdutils"),
    ]:
        if shutil.which(tool) is None:
            missing.append(f"{tool}: {how}")
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        missing.append("aiosmtpd: pip install aiosmtpd uvloop")
    return missing


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


def accept_runs(
    runs: int, work: Path, names: list[str]
) -> dict[str, dict[str, list[dict[str, float]]]]:
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for run in range(runs):
        for name in names:
            with SERVERS[name](work / f"{name}-{run}") as srv:
                for mode in MODES:
                    if mode.only and name not in mode.only:
                        continue
                    tracker = Tracker(*srv.pids)
                    tracker.start()
                    rate = smtp_source(srv.port, mode, "bob@localhost")
                    usage = tracker.stop()
                    figure = {"rate": rate, "cpu_per_1000": usage.cpu_seconds * 1000 / mode.count,
                              "rss_mib": usage.peak_rss_kib / 1024,
                              "pss_mib": usage.pss_kib / 1024}  # fmt: skip
                    results.setdefault(name, {}).setdefault(mode.name, []).append(figure)
                    print(f"run {run + 1} {name:10} {mode.name:22} {rate:8.0f} msg/s", flush=True)
    return results


RELAY = Mode("relay, 20, 1 KB", 20, 1024, True, 3000)
RELAY_TUNING = os.environ.get("POSTHORN_BENCH_RELAY_CONFIG", "").replace("\\n", "\n")


def _queue_empty(name: str, work: Path) -> bool:
    """Nothing left to deliver: Posthorn's queue table, or Postfix's queue directories."""
    if name == "posthorn":
        db = work / "data" / "queue" / "queue.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    dirs = ("incoming", "active", "deferred", "maildrop")
    return not any(
        any((work / "queue" / d).rglob("*")) for d in dirs if (work / "queue" / d).exists()
    )


def relay_runs(runs: int, work: Path) -> dict[str, list[float]]:
    """Accept and deliver to an smtp-sink, end to end: messages per second until the
    queue is empty again."""
    results: dict[str, list[float]] = {}
    for run in range(runs):
        for name in ("posthorn", "postfix"):
            base = work / f"relay-{name}-{run}"
            with servers.smtp_sink(base / "sink") as sink:
                if name == "posthorn":
                    config = f'[routes]\n"*" = "smtp:[127.0.0.1]:{sink.port}"\n' + RELAY_TUNING
                    launch = servers.posthorn(base, hold=False, config=config)
                else:
                    launch = servers.postfix(base, relay_to=sink.port)
                with launch as srv:
                    start = time.monotonic()
                    smtp_source(srv.port, RELAY, "bob@remote.bench")
                    deadline = start + 600
                    while not _queue_empty(name, base) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    rate = RELAY.count / (time.monotonic() - start)
            results.setdefault(name, []).append(rate)
            print(f"run {run + 1} {name:10} {RELAY.name:22} {rate:8.0f} msg/s", flush=True)
    return results


def relay_table(results: dict[str, list[float]]) -> str:
    post, fix = results.get("posthorn", []), results.get("postfix", [])
    ratio = (
        median([p / f for p, f in zip(post, fix, strict=False)]) if post and fix else float("nan")
    )
    return "\n".join([
        "## Relay end to end (accept + deliver to smtp-sink; reuse, 20 sessions, 1 KB)", "",
        "| Posthorn | Postfix | Posthorn / Postfix |", "|---|---|---|",
        f"| {median(post):,.0f} | {median(fix):,.0f} | {ratio:.2f}x |",
    ])  # fmt: skip


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    names = list(results)
    lines = [
        "| mode | " + " | ".join(names) + " | Posthorn / Postfix |",
        "|---" * (len(names) + 2) + "|",
    ]
    for mode in MODES:
        cells, ratios = [], []
        for name in names:
            figures = results[name].get(mode.name, [])
            cells.append(f"{median([f['rate'] for f in figures]):,.0f}" if figures else "-")
        post, fix = (
            results.get("posthorn", {}).get(mode.name),
            results.get("postfix", {}).get(mode.name),
        )
        if post and fix:
            ratios = [p["rate"] / f["rate"] for p, f in zip(post, fix, strict=False)]
        ratio = f"{median(ratios):.2f}x" if ratios else "-"
        lines.append(f"| {mode.name} | " + " | ".join(cells) + f" | {ratio} |")
    lines += [
        "",
        "| server | CPU s per 1,000 msgs (reuse, 1, 1 KB) | peak RSS MiB |",
        "|---|---|---|",
    ]
    for name in names:
        figures = results[name].get("reuse, 1, 1 KB", [])
        cpu = median([f["cpu_per_1000"] for f in figures])
        rss = max((f["rss_mib"] for m in results[name].values() for f in m), default=0.0)
        pss = max((f["pss_mib"] for m in results[name].values() for f in m), default=0.0)
        lines.append(f"| {name} | {cpu:.2f} | {rss:.0f} | {pss:.0f} |")
    return "\n".join(lines)


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="posthorn-bench-"))
    path.chmod(0o755)  # Postfix's own users must reach its queue inside
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp directories")
    parser.add_argument(
        "--postgres", action="store_true", help="also: 1 and 2 nodes on PostgreSQL vs SQLite"
    )
    parser.add_argument("--postgres-count", type=int, default=4000, help="messages per mode")
    args = parser.parse_args()
    missing = check_tools()
    if missing:
        print("missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 69
    names = [n for n in args.servers.split(",") if n]
    OUT.mkdir(exist_ok=True)
    with workdir(args.keep) as work:
        results = accept_runs(args.runs, work, names)
        report: dict[str, object] = {"accept": results}
        heading = f"## Durable accept (messages/second, median of {args.runs} runs)"
        text = heading + "\n\n" + table(results)
        if not args.skip_relay:
            relay = relay_runs(args.runs, work)
            report["relay"] = relay
            text += "\n\n" + relay_table(relay)
        if not args.skip_latency:
            extra = latency.all_figures(work, args.runs)
            report["latency"] = extra
            text += "\n\n" + latency.render(extra)
        if args.postgres:
            import cluster

            shared = cluster.runs(args.postgres_count, args.runs)
            report["postgres"] = shared
            text += f"\n\n## Shared queue (median of {args.runs} runs)\n\n" + cluster.table(shared)
    (OUT / "results.json").write_text(json.dumps(report, indent=2))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
