"""`posthorn send`: compose a message at the terminal and submit it over SMTP (mail -v)."""

from __future__ import annotations

import argparse

from posthorn.cli.common import add_common, load_config


def cmd_send(args: argparse.Namespace) -> int:
    from posthorn.ua import shell

    request = shell.SendRequest(
        recipients=tuple(args.recipients),
        subject=args.subject,
        cc=tuple(args.cc),
        bcc=tuple(args.bcc),
        attachments=tuple(args.attach),
        sender=args.sender,
        server=args.server,
        verbose=args.verbose,
    )
    return shell.send(load_config(args), request, shell.Terminal())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = sub.add_parser(
        "send",
        help="compose a message and submit it over SMTP",
        description="Compose a message and submit it over SMTP. Without recipients, asks "
        "for To:; without -s, asks for Subject:. The body is read from standard input "
        "until end of file or a line with a single '.'.",
    )
    add_common(send)
    send.add_argument("recipients", nargs="*", metavar="ADDRESS", help="To: recipients")
    send.add_argument("-s", "--subject", help="the subject (else prompted)")
    send.add_argument("-c", "--cc", action="append", default=[], metavar="ADDRESS", help="Cc")
    send.add_argument(
        "-b", "--bcc", action="append", default=[], metavar="ADDRESS", help="Bcc (never shown)"
    )
    send.add_argument(
        "-a", "--attach", action="append", default=[], metavar="FILE", help="attach a file"
    )
    send.add_argument("-r", "--from", dest="sender", metavar="ADDRESS", help="the From address")
    send.add_argument("--server", metavar="HOST:PORT", help="submit here (config: submit.server)")
    send.add_argument("-v", "--verbose", action="store_true", help="show the SMTP dialogue")
    send.set_defaults(func=cmd_send)
