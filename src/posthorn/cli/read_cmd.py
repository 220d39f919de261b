"""`posthorn read`: list a mailbox (Maildir or mbox) or show one message, marking it seen.

`--user USER` (the default: you) opens the mailbox local delivery puts USER's mail in,
Maildir or mbox as routed (`posthorn.routing.user_mailbox`); `--mailbox PATH`
any Maildir or mbox. Exit 69 (EX_UNAVAILABLE) for --user when local mail goes to a
mailbox server over LMTP (local.mailbox).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from posthorn.cli.common import EX_UNAVAILABLE, add_common, load_config


def cmd_read(args: argparse.Namespace) -> int:
    from posthorn.ua import shell

    if args.mailbox:
        path, owner = Path(args.mailbox), ""
    else:
        from posthorn.routing.user_mailbox import user_mailbox

        config = load_config(args)
        owner = (args.user or getpass.getuser()).lower()
        if config.local.mailbox:
            # Local mail goes to a mailbox server over LMTP: there is nothing here to read.
            print(
                f"posthorn read: {owner}'s mail is delivered to {config.local.mailbox} "
                "(local.mailbox); read it there, or name a mailbox with --mailbox",
                file=sys.stderr,
            )
            return EX_UNAVAILABLE
        # Where local delivery puts this user's mail: Maildir or mbox, as routed.
        path = user_mailbox(config, owner)
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
    which.add_argument(
        "--user",
        help="read the mailbox USER's mail is delivered to, Maildir or mbox (default: you)",
    )
    which.add_argument("--mailbox", metavar="PATH", help="read this Maildir or mbox")
    read.add_argument("--save", metavar="DIR", help="save the message's attachments in DIR")
    read.add_argument("--json", action="store_true", help="list as JSON")
    read.set_defaults(func=cmd_read)
