"""`posthorn queue bounce ID...`: give up on messages now and send each sender a DSN.

The action is `posthorn.queue.admin.bounce` (through `queue/giveup.py`, with the DSN
from the runner's own bouncer); this module owns its arguments, its output and its exit
status: 0, 66 for an id not in the queue, 75 for a message still being delivered after
`--wait` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time

from posthorn.cli.common import EX_NOINPUT, EX_OK, EX_TEMPFAIL, add_common, load_config
from posthorn.queue import admin
from posthorn.queue.giveup import Busy
from posthorn.queue.store import StoreError

__all__ = ["register"]


def _bounce_lines(report: admin.BounceReport) -> tuple[list[str], list[str]]:
    out, err = [], []
    for b in report.bounced:
        failed = ", ".join(f"<{r}>" for r in b.recipients) or "no pending recipients"
        if b.notices:
            note = f"notification {', '.join(b.notices)} to the sender"
        else:
            why = "null sender" if b.null_sender else "NOTIFY without FAILURE"
            note = f"no notification ({why})"
        out.append(f"{b.qid}: bounced {failed}; {note}")
    for busy in report.busy:
        until = datetime.datetime.fromtimestamp(busy.until).strftime("%H:%M:%S")
        err.append(
            f"posthorn queue: {busy.qid}: being delivered by {busy.owner} (lease until "
            f"{until}); try again later or wait longer (--wait)"
        )
    err += [f"posthorn queue: {qid}: no such message in the queue" for qid in report.missing]
    if report.woke is False:
        out.append("(no server is running: the notification goes out when it starts)")
    return out, err


def cmd_queue_bounce(args: argparse.Namespace) -> int:
    """Fail every pending recipient now and send the sender a DSN, as an expiry would."""
    from posthorn import daemon

    config = load_config(args)
    mta = daemon.build(config)
    owner = f"{config.server.hostname}/bounce[{os.getpid()}]"

    def waiting(busy: Busy) -> None:
        print(
            f"posthorn queue: {busy.qid}: being delivered by {busy.owner}; waiting up to "
            f"{args.wait:g}s for that delivery to finish",
            file=sys.stderr,
            flush=True,
        )

    async def action() -> admin.BounceReport:
        # The daemon's own store, bouncer and intake, opened next to the running server.
        await mta.store.open()
        try:
            return await admin.bounce(
                mta.store, args.ids, mta.runner.bouncer, config.server.data_dir, owner=owner,
                lease=config.queue.lease, clock=time.time, wait=args.wait, on_wait=waiting,
            )  # fmt: skip
        finally:
            await mta.store.close()

    try:
        report = asyncio.run(action())
    except StoreError as exc:
        print(f"posthorn: cannot update the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    out, err = _bounce_lines(report)
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)
    if report.busy:
        return EX_TEMPFAIL
    return EX_NOINPUT if report.missing else EX_OK


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bounce = actions.add_parser(
        "bounce",
        help="give up on messages now and send each sender a bounce",
        description="Fail every pending recipient of each message now and send the sender "
        "a delivery status notification (RFC 3464), as an expiry would (none for a null "
        "sender). A message the server is delivering at that moment is waited for (up to "
        "--wait seconds), then refused with exit status 75.",
    )
    add_common(bounce)
    bounce.add_argument("ids", nargs="+", metavar="ID", help="queue ids")
    bounce.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a delivery in progress (default 30)",
    )
    bounce.set_defaults(func=cmd_queue_bounce)
