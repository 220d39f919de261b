"""`posthorn sendmail` and the `sendmail` program: the interface cron, PHP and git call.

Reads sendmail's own option syntax (parsed by `posthorn.ua.sendmail_options`), so the
argparse entry only collects the words. Modes: deliver a message read from standard
input (default; -t, -i, -f, -F, -N, -R, -V, -B), -bs (SMTP on standard input and
output), -bp (the queue, as mailq), -q (run the queue now). Exit codes are sysexits.h's.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from posthorn import config as cfg
from posthorn.cli import queue_cmd
from posthorn.cli.common import (
    EX_CONFIG,
    EX_DATAERR,
    EX_OK,
    EX_TEMPFAIL,
    EX_USAGE,
    run,
)
from posthorn.queue.store import StoreError
from posthorn.ua import sendmail_options as options

if TYPE_CHECKING:
    from posthorn.daemon import Mta
    from posthorn.ua.local import LocalQueue

USAGE = """\
usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] [-V envid]
                [-B type] [-v] [--config FILE] [--data-dir DIR] [recipient ...]
       sendmail -bs | -bp | -q | -qRdomain

Queue a message read from standard input (without -i, a line holding a single '.'
ends it). -t takes recipients from To, Cc and Bcc and removes Bcc; -f sets the
envelope sender ('<>' for none); -F the full name of an added From. -bs speaks SMTP
on standard input and output; -bp lists the queue (mailq); -q runs it now.
"""


def _local_queue(config: cfg.Config) -> tuple[LocalQueue, Mta]:
    from posthorn import daemon
    from posthorn.ua.local import LocalQueue

    mta = daemon.build(config)
    return LocalQueue(mta.store, mta.intake, config.server.data_dir), mta


def _deliver(config: cfg.Config, args: options.SendmailArgs) -> int:
    from posthorn.ua import local
    from posthorn.ua.sendmail import SendmailError, prepare

    limit = config.smtp.max_message_size
    data = sys.stdin.buffer.read(limit + 1 if limit else -1)
    if limit and len(data) > limit:
        # RFC 1870's limit holds for local mail too (552 5.3.4 over SMTP).
        print(f"sendmail: message larger than {limit} octets", file=sys.stderr)
        return EX_DATAERR
    try:
        prepared = prepare(data, args, login=getpass.getuser(), hostname=config.server.hostname)
    except SendmailError as exc:
        print(f"sendmail: {exc}", file=sys.stderr)
        return exc.code
    queue, _ = _local_queue(config)
    submitted = run(lambda: local.submit(queue, prepared, os.getuid()))
    reply = submitted.reply
    if not reply.is_positive:
        print(f"sendmail: not queued: {reply}", file=sys.stderr)
        return EX_TEMPFAIL if reply.is_transient else EX_DATAERR
    if args.verbose:
        print(f"sendmail: {reply.text}", file=sys.stderr)
        if submitted.woke is False:
            print("sendmail: no server is running; it delivers when it starts", file=sys.stderr)
    return EX_OK


def _smtp(config: cfg.Config) -> int:
    from posthorn.ua import local

    queue, mta = _local_queue(config)
    listener = mta.listener
    run(lambda: local.smtp_session(queue, listener.ctx, listener.limits, os.getuid()))
    return EX_OK


def _flush(config: cfg.Config, args: options.SendmailArgs) -> int:
    from posthorn.queue import admin

    data_dir = config.server.data_dir
    flushed = queue_cmd.with_store(
        config, lambda store: admin.flush(store, data_dir, time.time(), args.flush_domain)
    )
    if args.verbose or not flushed.woke:
        where = "" if flushed.woke else " (no server is running; it delivers when it starts)"
        print(f"sendmail: {flushed.recipients} recipient(s) due now{where}", file=sys.stderr)
    return EX_OK


def sendmail(words: Sequence[str]) -> int:
    """The whole sendmail command: parse, then run the mode."""
    try:
        args = options.parse(words)
    except options.UsageError as exc:
        print(f"sendmail: {exc}\n{USAGE}", file=sys.stderr, end="")
        return EX_USAGE
    if args.mode is options.Mode.HELP:
        print(USAGE, end="")
        return EX_OK
    if args.verbose:
        for note in args.notes:
            print(f"sendmail: {note}", file=sys.stderr)
    try:
        config = cfg.resolve(cfg.load(args.config), data_dir=args.data_dir)
        if args.mode is options.Mode.PRINT_QUEUE:
            messages = queue_cmd.with_store(config, lambda store: store.list())
            queue_cmd.print_queue(messages, as_json=False)
            return EX_OK
        if args.mode is options.Mode.FLUSH:
            return _flush(config, args)
        if args.mode is options.Mode.SMTP:
            return _smtp(config)
        return _deliver(config, args)
    except cfg.ConfigError as exc:
        print(f"sendmail: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except (StoreError, OSError) as exc:
        print(f"sendmail: cannot open the queue: {exc}", file=sys.stderr)
        return EX_TEMPFAIL


def main() -> int:
    """The `sendmail` console script."""
    return sendmail(sys.argv[1:])


def mailq() -> int:
    """The `mailq` console script: `sendmail -bp`."""
    return sendmail(["-bp", *sys.argv[1:]])


def cmd_sendmail(args: argparse.Namespace) -> int:
    return sendmail(args.words)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # sendmail's options (-oi, -fsender, -bs) are not argparse's: with '+' as the only
    # option prefix, every word reaches the sendmail parser untouched.
    parser = sub.add_parser(
        "sendmail",
        help="the sendmail interface (-t, -i, -f, -bs, -bp, -q; see --help)",
        prefix_chars="+",
        add_help=False,
    )
    parser.add_argument("words", nargs=argparse.REMAINDER)
    parser.set_defaults(func=cmd_sendmail)
