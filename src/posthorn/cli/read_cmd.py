"""`posthorn read`: list a mailbox (Maildir or mbox) or show one message, marking it seen."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from posthorn.cli.common import add_common, load_config


def cmd_read(args: argparse.Namespace) -> int:
    from posthorn.ua import shell

    if args.mailbox:
        path, owner = Path(args.mailbox), ""
    else:
        config = load_config(args)
        owner = (args.user or getpass.getuser()).lower()
        path = Path(config.local.maildir.format(data_dir=config.server.data_dir, user=owner))
    request = shell.ReadRequest(
        mailbox=path,
        owner=owner,
        number=args.number,
        save=Path(args.save) if args.save else None,
        as_json=args.json,
    )
    return shell.read(request, shell.Terminal())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    read = sub.add_parser(
        "read",
        help="list a mailbox or show one message",
        description="Without N, list the mailbox: number, status (N new, U unread), date, "
        "from, size, subject. With N, show message N decoded, list its attachments "
        "and mark it seen.",
    )
    add_common(read)
    read.add_argument("number", nargs="?", type=int, metavar="N", help="the message to show")
    which = read.add_mutually_exclusive_group()
    which.add_argument("--user", help="read USER's mailbox in the data directory (default: you)")
    which.add_argument("--mailbox", metavar="PATH", help="read this Maildir or mbox")
    read.add_argument("--save", metavar="DIR", help="save the message's attachments in DIR")
    read.add_argument("--json", action="store_true", help="list as JSON")
    read.set_defaults(func=cmd_read)
