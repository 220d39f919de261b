"""The cost of the shared queue: accept rate of Posthorn on PostgreSQL with one and with
two nodes, against one node on the embedded SQLite store, on the same machine.

Each node runs in hold mode (accept and commit, no delivery), so the figure is the
durable accept path: SMTP, intake, and the store's group commit. With two nodes the load
is split in half, one smtp-source per node, run at the same time; the rate is all
messages over the time until both finished. PostgreSQL is a throw-away cluster started
the same way as in the tests (tests/support/postgres.py: initdb and pg_ctl, fsync on).
Run through `python bench/run.py --postgres` (or this file directly).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import servers

sys.path.insert(0, str(servers.ROOT / "tests"))
from support.postgres import running_postgres

SESSIONS = 20
SIZE = 1024


def _source(port: int, sessions: int, count: int) -> None:
    args = ["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(SIZE), "-d",
            "-M", "client.bench", "-f", "load@client.bench", "-t", "bob@localhost",
            f"127.0.0.1:{port}"]  # fmt: skip
    subprocess.run(args, check=True, timeout=900, stdout=subprocess.DEVNULL)


def drive(ports: list[int], count: int) -> float:
    """Messages per second with the load split evenly over `ports`, all at once."""
    share = count // len(ports)
    threads = [
        threading.Thread(target=_source, args=(port, max(1, SESSIONS // len(ports)), share))
        for port in ports
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return share * len(ports) / (time.monotonic() - start)


@contextlib.contextmanager
def _nodes(work: Path, config: str, count: int) -> Iterator[list[int]]:
    with contextlib.ExitStack() as stack:
        ports = [
            stack.enter_context(
                servers.posthorn(
                    work / f"node{n}",
                    hold=True,
                    config=config.replace("NODE", f"node{n}"),
                    name=f"node{n}",
                )
            ).port
            for n in range(count)
        ]
        yield ports


def modes() -> dict[str, tuple[str, int]]:
    """Name -> (config added to [server], number of nodes); a fresh database each run."""
    pg_config = '[cluster]\nnode = "NODE"\n[queue]\nstore = "{dsn}"\n'
    return {
        "SQLite, 1 node": ("", 1),
        "PostgreSQL, 1 node": (pg_config, 1),
        "PostgreSQL, 2 nodes": (pg_config, 2),
    }


def runs(count: int, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="posthorn-bench-pg-") as tmp, running_postgres() as pg:
        work = Path(tmp)
        for run in range(repeat):
            for name, (config, nodes) in modes().items():
                text = config.format(dsn=pg.create_database("bench")) if config else ""
                with _nodes(work / f"{run}-{nodes}-{len(results)}", text, nodes) as ports:
                    rate = drive(ports, count)
                results.setdefault(name, []).append(rate)
                print(f"run {run + 1} {name:22} {rate:8.0f} msg/s", flush=True)
    return results


def table(results: dict[str, list[float]]) -> str:
    base = statistics.median(results["SQLite, 1 node"])
    lines = [
        f"| queue store ({SESSIONS} sessions, 1 KB, hold) | msg/s | vs SQLite, 1 node |",
        "|---|---|---|",
    ]
    for name, rates in results.items():
        rate = statistics.median(rates)
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=4000, help="messages per mode and run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = runs(args.count, args.runs)
    print(f"\n## Shared queue (median of {args.runs} runs)\n\n" + table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
