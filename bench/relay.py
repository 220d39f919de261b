"""Relay end to end: accept and deliver to an smtp-sink, until the queue is empty again.

Posthorn routes everything to the sink (`[routes] "*"`), Postfix through `relayhost`;
both with their default concurrency (Posthorn: 20 connections per destination, like
Postfix's default_destination_concurrency_limit).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import servers
from accept import MULTI, WARM_UP, WORKERS, Mode, median, ratio, smtp_source

RELAY = Mode("relay, 20, 1 KB", 20, 1024, True, 3000)
TUNING = os.environ.get("POSTHORN_BENCH_RELAY_CONFIG", "").replace("\\n", "\n")


def _queue_empty(name: str, work: Path) -> bool:
    """Nothing left to deliver: Posthorn's queue table, or Postfix's queue directories."""
    if name.startswith("posthorn"):
        db = work / "data" / "queue" / "queue.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0)
    dirs = ("incoming", "active", "deferred", "maildrop")
    return not any(
        any((work / "queue" / d).rglob("*")) for d in dirs if (work / "queue" / d).exists()
    )


def _wait_empty(name: str, base: Path) -> None:
    deadline = time.monotonic() + 600
    while not _queue_empty(name, base) and time.monotonic() < deadline:
        time.sleep(0.05)


def runs(count: int, work: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for run in range(count):
        for name in ("posthorn", MULTI, "postfix"):
            base = work / f"relay-{name}-{run}"
            with servers.smtp_sink(base / "sink") as sink:
                if name.startswith("posthorn"):
                    config = f'[routes]\n"*" = "smtp:[127.0.0.1]:{sink.port}"\n' + TUNING
                    workers = WORKERS if name == MULTI else 1
                    launch = servers.posthorn(base, hold=False, config=config, workers=workers)
                else:
                    launch = servers.postfix(base, relay_to=sink.port)
                with launch as srv:
                    # Not measured: start-up, as in accept.py.
                    smtp_source(srv.port, WARM_UP, "bob@remote.bench")
                    _wait_empty(name, base)
                    start = time.monotonic()
                    smtp_source(srv.port, RELAY, "bob@remote.bench")
                    _wait_empty(name, base)
                    rate = RELAY.count / (time.monotonic() - start)
            results.setdefault(name, []).append(rate)
            print(f"run {run + 1} {name:12} {RELAY.name:22} {rate:8.0f} msg/s", flush=True)
    return results


def table(results: dict[str, list[float]]) -> str:
    names = [n for n in ("posthorn", MULTI, "postfix") if n in results]
    mine = [n for n in names if n != "postfix"]
    head = names + [f"{n} / postfix" for n in mine]
    cells = [f"{median(results[n]):,.0f}" for n in names]
    cells += [ratio(results[n], results.get("postfix", [])) for n in mine]
    return "\n".join([
        "## Relay end to end (accept + deliver to smtp-sink; reuse, 20 sessions, 1 KB)", "",
        "| " + " | ".join(head) + " |", "|---" * len(head) + "|", "| " + " | ".join(cells) + " |",
    ])  # fmt: skip
