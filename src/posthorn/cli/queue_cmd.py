"""`posthorn queue ...`: inspect and control the mail queue, also while the server runs.

list (mailq), show ID, flush [ID|DOMAIN], hold ID..., release ID..., delete ID...|--all,
bounce ID... (give up now and send the sender a DSN).
The actions are `posthorn.queue.admin`'s; this module owns their arguments and output.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from posthorn import config as cfg
from posthorn.cli import queue_bounce
from posthorn.cli.common import EX_NOINPUT, EX_OK, EX_TEMPFAIL, EX_USAGE, add_common, load_config
from posthorn.queue import admin
from posthorn.queue.model import QueuedMessage, RcptState, RecipientStatus
from posthorn.queue.store import QueueStore, StoreError
from posthorn.ua.view import printable

T = TypeVar("T")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def with_store(config: cfg.Config, action: Callable[[QueueStore], Awaitable[T]]) -> T:
    from posthorn import daemon

    async def run() -> T:
        store = daemon.open_store(config)
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _message_json(m: QueuedMessage) -> dict[str, object]:
    env = m.envelope
    return {
        "id": m.qid,
        "size": m.size,
        "arrival": env.arrival,
        "sender": env.sender_text,
        "hold": m.hold,
        "active": bool(m.lease_owner) and m.lease_until > time.time(),
        "lease_owner": m.lease_owner,  # the node delivering it ("" when none)
        "lease_until": m.lease_until,
        "recipients": [
            {
                "address": str(r.recipient.address),
                "state": r.state.value,
                "attempts": r.attempts,
                "last_reply": r.last_reply,
                "relay": r.relay,
                "next_attempt": r.next_attempt,
            }
            for r in m.recipients
        ],
    }


def _rcpt_state(r: RecipientStatus, now: float) -> str:
    if r.state is not RcptState.PENDING or not r.attempts:
        return r.state.value
    when = f"in {_age(r.next_attempt - now)}" if r.next_attempt > now else "now"
    tries = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
    return f"pending, {tries}, next attempt {when}"


def print_queue(messages: list[QueuedMessage], as_json: bool) -> None:
    """The queue as mailq shows it: `!` marks a held message, `*` one being delivered."""
    if as_json:
        print(json.dumps([_message_json(m) for m in messages], indent=2, ensure_ascii=False))
        return
    if not messages:
        print("Mail queue is empty")
        return
    now = time.time()
    for m in messages:
        env = m.envelope
        flag = "!" if m.hold else ("*" if m.lease_owner and m.lease_until > now else "")
        print(f"{m.qid}{flag:1} {m.size:>8} {_age(now - env.arrival):>5}  <{env.sender_text}>")
        if m.lease_owner and m.lease_until > now:
            # Several nodes may share this queue: say which one is delivering it.
            until = time.strftime("%H:%M:%S", time.localtime(m.lease_until))
            print(f"{'':27}(being delivered by {m.lease_owner}, lease until {until})")
        for r in m.recipients:
            print(f"{'':27}<{r.recipient.address}> {_rcpt_state(r, now)}")
            if r.last_reply:  # a remote server's text: no control characters reach us
                print(f"{'':29}({printable(r.last_reply)})")
    total = sum(m.size for m in messages)
    print(f"-- {total // 1024} Kbytes in {len(messages)} request{'s' * (len(messages) != 1)}.")


def cmd_queue_list(args: argparse.Namespace) -> int:
    messages = with_store(load_config(args), lambda store: store.list())
    print_queue(messages, args.json)
    return EX_OK


def cmd_queue_flush(args: argparse.Namespace) -> int:
    """Make deferred mail due now (all, one queue id, or one domain) and wake the server."""
    config = load_config(args)
    data_dir = config.server.data_dir
    try:
        flushed = with_store(
            config, lambda store: admin.flush(store, data_dir, time.time(), args.target)
        )
    except StoreError as exc:
        print(f"posthorn: cannot update the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    woke = "server woken" if flushed.woke else "no running server to wake"
    print(f"{flushed.recipients} recipient(s) scheduled for delivery now; {woke}")
    return EX_OK


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _show_text(m: QueuedMessage, header: bytes) -> list[str]:
    env, now = m.envelope, time.time()
    state = "on hold" if m.hold else "queued"
    if m.lease_owner and m.lease_until > now:
        state += f", being delivered by {m.lease_owner}"
    params = [
        f"{name}={value}"
        for name, value in (("BODY", env.body), ("RET", env.ret), ("ENVID", env.envid))
        if value
    ] + (["SMTPUTF8"] if env.smtputf8 else [])
    client = (
        f"{env.client_name or 'unknown'} [{env.client_address}]" if env.client_address else "local"
    )
    lines = [
        f"Queue ID:   {m.qid}",
        f"Arrival:    {_when(env.arrival)} ({_age(now - env.arrival)} ago)",
        f"Size:       {m.size}",
        f"State:      {state}",
        f"Sender:     <{env.sender_text}>",
        f"Client:     {client}, HELO {env.helo or '-'}, {env.protocol}"
        + (f", AUTH {env.auth_user}" if env.auth_user else ""),
    ]
    if params:
        lines.append(f"Parameters: {' '.join(params)}")
    lines.append("Recipients:")
    for r in m.recipients:
        lines.append(f"  <{r.recipient.address}> {_rcpt_state(r, now)}")
        if r.last_reply:
            relay = f" (relay {r.relay})" if r.relay else ""
            lines.append(f"      {printable(r.last_reply)}{relay}")
        if r.state is RcptState.PENDING and r.attempts:
            lines.append(f"      next attempt {_when(r.next_attempt)}")
    text = header.decode("utf-8", "replace").rstrip("\r\n")
    # The headers came from the sender: show them, but not their control characters.
    return [*lines, "", "Headers:", *(printable(line) for line in text.split("\r\n"))]


def cmd_queue_show(args: argparse.Namespace) -> int:
    shown = with_store(load_config(args), lambda store: admin.show(store, args.id))
    if shown is None:
        print(f"posthorn queue: {args.id}: no such message in the queue", file=sys.stderr)
        return EX_NOINPUT
    if args.json:
        data = _message_json(shown.message)
        data["headers"] = shown.header.decode("utf-8", "replace")
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print("\n".join(_show_text(shown.message, shown.header)))
    return EX_OK


def _report(done: admin.Done, verb: str) -> int:
    for qid in done.changed:
        print(f"{qid}: {verb}")
    for qid in done.missing:
        print(f"posthorn queue: {qid}: no such message in the queue", file=sys.stderr)
    if done.woke is False:
        print("(no server is running: it will see this when it starts)")
    return EX_NOINPUT if done.missing else EX_OK


def cmd_queue_hold(args: argparse.Namespace) -> int:
    done = with_store(load_config(args), lambda store: admin.hold(store, args.ids))
    return _report(done, "held")


def cmd_queue_release(args: argparse.Namespace) -> int:
    config = load_config(args)
    data_dir = config.server.data_dir
    done = with_store(config, lambda store: admin.release(store, args.ids, data_dir))
    return _report(done, "released")


def cmd_queue_delete(args: argparse.Namespace) -> int:
    if bool(args.ids) == args.all:
        print("posthorn queue delete: give message ids or --all", file=sys.stderr)
        return EX_USAGE
    config = load_config(args)
    if args.all:
        done = with_store(config, admin.delete_all)
    else:
        done = with_store(config, lambda store: admin.delete(store, args.ids))
    return _report(done, "deleted")


def cmd_queue_init(args: argparse.Namespace) -> int:
    """Create the queue's schema, or migrate it to this version (also done at start-up)."""
    from posthorn import daemon
    from posthorn.queue import sqlite_schema
    from posthorn.queue.postgres import init_schema

    config = load_config(args)

    async def init() -> tuple[int | None, int]:
        if config.queue.store != "sqlite":
            return await init_schema(config.queue.store)
        store = daemon.open_store(config)
        await store.open()  # creates or migrates the database file
        await store.close()
        return None, sqlite_schema.SCHEMA_VERSION

    try:
        before, after = asyncio.run(init())
    except StoreError as exc:
        print(f"posthorn: cannot set up the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if before is None:
        done = "ready"
    elif before == 0:
        done = "created"
    elif before < after:
        done = f"migrated from version {before}"
    else:
        done = "up to date"
    print(f"queue schema version {after}: {done}")
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser("queue", help="inspect and control the mail queue")
    actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    qlist = actions.add_parser(
        "list",
        help="list queued messages (mailq)",
        description="List the queue as mailq does: each message's queue id ('!' held, "
        "'*' being delivered), size, age and sender, then each recipient with its state, "
        "last error and next attempt. Works while the server runs.",
    )
    add_common(qlist)
    qlist.add_argument("--json", action="store_true", help="machine-readable output")
    qlist.set_defaults(func=cmd_queue_list)
    qflush = actions.add_parser(
        "flush",
        help="deliver deferred mail now",
        description="Make deferred mail due now (all of it, one queued message ID, or the "
        "mail for one DOMAIN) and wake the running server to deliver it.",
    )
    add_common(qflush)
    qflush.add_argument("target", nargs="?", metavar="ID|DOMAIN", help="one message or domain")
    qflush.set_defaults(func=cmd_queue_flush)
    show = actions.add_parser("show", help="show a message's envelope, state and headers")
    add_common(show)
    show.add_argument("id", metavar="ID", help="queue id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_queue_show)
    for name, func, text in (
        ("hold", cmd_queue_hold, "keep messages queued without delivering them"),
        ("release", cmd_queue_release, "deliver held messages again"),
    ):
        action = actions.add_parser(name, help=text)
        add_common(action)
        action.add_argument("ids", nargs="+", metavar="ID", help="queue ids")
        action.set_defaults(func=func)
    delete = actions.add_parser("delete", help="remove messages without delivery or bounce")
    add_common(delete)
    delete.add_argument("ids", nargs="*", metavar="ID", help="queue ids")
    delete.add_argument("--all", action="store_true", help="empty the whole queue")
    delete.set_defaults(func=cmd_queue_delete)
    qinit = actions.add_parser("init", help="create or migrate the queue's database schema")
    add_common(qinit)
    qinit.set_defaults(func=cmd_queue_init)
    queue_bounce.register(actions)
