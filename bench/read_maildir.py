"""Benchmark: list a 10,000-message Maildir with `posthorn read` (goal: under 1 s).

Builds the Maildir in a temporary directory (realistic headers: trace fields, RFC 2047
encoded words, a few KB of body each; a third of the messages already read in cur/),
then times the whole command in a subprocess, start-up included, and the listing alone
in this process. Prints the figures; it is not a test and asserts nothing.

    PYTHONPATH=src python bench/read_maildir.py [--messages N] [--runs R]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from posthorn.ua import shell  # noqa: E402

SUBJECTS = (
    "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n    "
    "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
    "Quarterly report, draft {n}",
    "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?= ({n})",
)
SENDERS = (
    "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
    "=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
    '"Alice Example" <alice@example.org>',
)


def _message(n: int) -> bytes:
    head = (
        "Return-Path: <alice@example.org>\n"
        "Delivered-To: bob@localhost\n"
        "Received: from client.example.org (client.example.org [192.0.2.10])\n"
        f"\tby mx.example.org (Posthorn) with ESMTP id {n:016X}\n"
        f"\tfor <bob@localhost>; Mon, 19 Jul 1993 12:{n % 60:02d}:34 -0700\n"
        f"From: {SENDERS[n % 3]}\n"
        "To: Bob <bob@localhost>\n"
        f"Subject: {SUBJECTS[n % 3].format(n=n)}\n"
        f"Date: Mon, 19 Jul 1993 12:{n % 60:02d}:34 -0700\n"
        f"Message-ID: <{n}.bench@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
    )
    body = "".join(f"Line {i} of message {n}, some text to give it weight.\n" for i in range(40))
    return (head + "\n" + body).encode()


def build(root: Path, count: int) -> Path:
    maildir = root / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    base = 742_420_054
    for n in range(count):
        data = _message(n)
        name = f"{base + n}.Q{n:016X}R0.mx.example.org,S={len(data)}"
        path = maildir / "cur" / f"{name}:2,S" if n % 3 == 0 else maildir / "new" / name
        path.write_bytes(data)
    return maildir


def time_subprocess(maildir: Path, runs: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    cmd = [sys.executable, "-m", "posthorn", "read", "--mailbox", str(maildir)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True)
        times.append(time.perf_counter() - start)
    lines = done.stdout.count(b"\n")
    print(f"  listed {lines} lines")
    return times


def time_in_process(maildir: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = io.StringIO()
        terminal = shell.Terminal(out=out, err=io.StringIO())
        start = time.perf_counter()
        shell.read(shell.ReadRequest(mailbox=maildir), terminal)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posthorn-bench-") as tmp:
        print(f"building a Maildir of {args.messages} messages ...")
        maildir = build(Path(tmp), args.messages)
        whole = time_subprocess(maildir, args.runs)
        listing = time_in_process(maildir, args.runs)
    print(
        f"posthorn read (subprocess, start-up included): median {statistics.median(whole):.3f} s,"
        f" best {min(whole):.3f} s  (goal: under 1 s)"
    )
    print(
        f"listing alone (in process):                     median "
        f"{statistics.median(listing):.3f} s, best {min(listing):.3f} s"
    )


if __name__ == "__main__":
    main()
