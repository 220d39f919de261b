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
