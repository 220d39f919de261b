"""`posthorn passwd USER`: add or change an SMTP AUTH user (or remove one with --delete).

The password is read without echo from the terminal, or as one line from standard input
when that is not a terminal (for scripts). It never appears on a command line.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from posthorn.cli.common import EX_DATAERR, EX_NOUSER, EX_OK, add_common, load_config
from posthorn.config import password_file
from posthorn.passwords import PasswordFile, PasswordFileError


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Retype new password: "):
            print("posthorn: passwords do not match", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_passwd(args: argparse.Namespace) -> int:
    config = load_config(args)
    path = args.file or password_file(config)
    passwords = PasswordFile(Path(path))
    try:
        if args.delete:
            if not passwords.remove(args.user):
                print(f"posthorn: no such user {args.user}", file=sys.stderr)
                return EX_NOUSER
            print(f"removed {args.user} from {path}")
            return EX_OK
        password = _read_password()
        if not password:
            print("posthorn: empty password refused", file=sys.stderr)
            return EX_DATAERR
        passwords.set(args.user, password)
    except PasswordFileError as exc:
        print(f"posthorn: {exc}", file=sys.stderr)
        return EX_DATAERR
    print(f"password set for {args.user} in {path}")
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    passwd = sub.add_parser("passwd", help="set the SMTP AUTH password of a user")
    add_common(passwd)
    passwd.add_argument("user", metavar="USER")
    passwd.add_argument(
        "--file", metavar="FILE", help="password file (default: auth.password_file)"
    )
    passwd.add_argument("--delete", action="store_true", help="remove the user")
    passwd.set_defaults(func=cmd_passwd)
