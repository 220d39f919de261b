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
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import accept
import latency
import relay

OUT = Path(__file__).resolve().parent / "out"


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
    parser.add_argument(
        "--servers", default=",".join(accept.SERVERS), help="comma-separated subset"
    )
    parser.add_argument(
        "--grid", action="store_true", help="also the rest of the grid (1 session, 100 KB, ...)"
    )
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
        modes = accept.MODES + (accept.GRID if args.grid else [])
        results = accept.runs(args.runs, work, names, modes)
        report: dict[str, object] = {"accept": results}
        heading = f"## Durable accept (messages/second, median of {args.runs} runs)"
        text = heading + "\n\n" + accept.table(results)
        if not args.skip_relay:
            relayed = relay.runs(args.runs, work)
            report["relay"] = relayed
            text += "\n\n" + relay.table(relayed)
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
