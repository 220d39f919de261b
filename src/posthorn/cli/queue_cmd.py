"""`posthorn queue ...`: inspect and control the mail queue, also while the server runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from posthorn import control
from posthorn.cli.common import EX_OK, EX_TEMPFAIL, add_common, load_config
from posthorn.queue.model import QueuedMessage
from posthorn.queue.store import StoreError


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _message_json(m: QueuedMessage) -> dict[str, object]:
    return {
        "id": m.qid,
        "size": m.size,
        "arrival": m.envelope.arrival,
        "sender": m.envelope.sender_text,
        "hold": m.hold,
        "lease_owner": m.lease_owner,  # the node delivering it ("" when none)
        "lease_until": m.lease_until,
        "recipients": [
            {
                "address": str(r.recipient.address),
                "state": r.state.value,
                "attempts": r.attempts,
                "last_reply": r.last_reply,
                "next_attempt": r.next_attempt,
            }
            for r in m.recipients
        ],
    }


def cmd_queue_list(args: argparse.Namespace) -> int:
    from posthorn import daemon

    config = load_config(args)

    async def fetch() -> list[QueuedMessage]:
        store = daemon.open_store(config)
        await store.open()
        try:
            return await store.list()
        finally:
            await store.close()

    messages = asyncio.run(fetch())
    if args.json:
        print(json.dumps([_message_json(m) for m in messages], indent=2, ensure_ascii=False))
        return EX_OK
    if not messages:
        print("Mail queue is empty")
        return EX_OK
    now = time.time()
    for m in messages:
        env = m.envelope
        flag = "!" if m.hold else ""
        print(f"{m.qid}{flag:1} {m.size:>8} {_age(now - env.arrival):>5}  <{env.sender_text}>")
        if m.lease_owner and m.lease_until > now:
            # Several nodes may share this queue: say which one is delivering it.
            until = time.strftime("%H:%M:%S", time.localtime(m.lease_until))
            print(f"{'':27}(being delivered by {m.lease_owner}, lease until {until})")
        for r in m.recipients:
            print(f"{'':27}<{r.recipient.address}> {r.state.value}")
            if r.last_reply:
                print(f"{'':29}({r.last_reply})")
    return EX_OK


def cmd_queue_flush(args: argparse.Namespace) -> int:
    """Make deferred mail due now (all, one queue id, or one domain) and wake the server."""
    from posthorn import daemon
    from posthorn.queue.flush import flush

    config = load_config(args)

    async def reschedule() -> int:
        store = daemon.open_store(config)
        await store.open()
        try:
            return await flush(store, time.time(), args.target)
        finally:
            await store.close()

    try:
        count = asyncio.run(reschedule())
    except StoreError as exc:
        print(f"posthorn: cannot update the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    answer = control.notify(config.server.data_dir, "WAKE")
    woke = "server woken" if answer == "OK" else "no running server to wake"
    print(f"{count} recipient(s) scheduled for delivery now; {woke}")
    return EX_OK


def cmd_queue_init(args: argparse.Namespace) -> int:
    """Create the queue's schema, or migrate it to this version (also done at start-up)."""
    from posthorn import daemon
    from posthorn.queue import sqlite_rows
    from posthorn.queue.postgres import init_schema

    config = load_config(args)

    async def init() -> tuple[int | None, int]:
        if config.queue.store != "sqlite":
            return await init_schema(config.queue.store)
        store = daemon.open_store(config)
        await store.open()  # creates or migrates the database file
        await store.close()
        return None, sqlite_rows.SCHEMA_VERSION

    try:
        before, after = asyncio.run(init())
    except StoreError as exc:
        print(f"posthorn: cannot set up the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if before is None:
        done = "ready"
    elif before == 0:
        done = "created"
    elif before is not None and before < after:
        done = f"migrated from version {before}"
    else:
        done = "up to date"
    print(f"queue schema version {after}: {done}")
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser("queue", help="inspect and control the mail queue")
    actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    qlist = actions.add_parser("list", help="list queued messages")
    add_common(qlist)
    qlist.add_argument("--json", action="store_true", help="machine-readable output")
    qlist.set_defaults(func=cmd_queue_list)
    qflush = actions.add_parser("flush", help="deliver deferred mail now")
    add_common(qflush)
    qflush.add_argument("target", nargs="?", metavar="ID|DOMAIN", help="one message or domain")
    qflush.set_defaults(func=cmd_queue_flush)
    qinit = actions.add_parser("init", help="create or migrate the queue's database schema")
    add_common(qinit)
    qinit.set_defaults(func=cmd_queue_init)
