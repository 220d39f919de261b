"""`posthorn dkim keygen DOMAIN`: create a DKIM signing key and print its DNS record."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from posthorn.cli.common import EX_CANTCREAT, EX_OK


def _txt_strings(record: str) -> str:
    """The record as quoted strings of at most 255 octets (RFC 1035 section 3.3.14)."""
    return " ".join(f'"{part}"' for part in textwrap.wrap(record, 255, break_on_hyphens=False))


def cmd_keygen(args: argparse.Namespace) -> int:
    from posthorn.mailauth.signing import generate_key

    path = Path(args.key or f"{args.domain}.{args.selector}.dkim.pem")
    try:
        record = generate_key(path, args.bits)
    except FileExistsError:
        print(f"posthorn: {path} exists; not overwriting a key", file=sys.stderr)
        return EX_CANTCREAT
    except OSError as exc:
        print(f"posthorn: cannot write {path}: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    domain = args.domain.rstrip(".")
    print(f"; private key written to {path}; publish this record:")
    print(f"{args.selector}._domainkey.{domain}. 3600 IN TXT {_txt_strings(record)}")
    print(f'; config:\n; [dkim]\n; selector = "{args.selector}"')
    print(f'; keys = {{ "{domain}" = "{path.absolute()}" }}')
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dkim = sub.add_parser("dkim", help="DKIM signing keys")
    actions = dkim.add_subparsers(dest="action", required=True, metavar="ACTION")
    keygen = actions.add_parser("keygen", help="create a signing key and print its DNS record")
    keygen.add_argument("domain", metavar="DOMAIN")
    keygen.add_argument("--selector", default="posthorn", help="selector (default: posthorn)")
    keygen.add_argument("--key", metavar="FILE", help="where to write the private key")
    keygen.add_argument("--bits", type=int, default=2048, choices=(1024, 2048, 3072, 4096))
    keygen.set_defaults(func=cmd_keygen)
