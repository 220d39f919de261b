"""`posthorn tls selfsigned`: create a development certificate and key for STARTTLS."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from posthorn.cli.common import EX_CANTCREAT, EX_OK


def cmd_selfsigned(args: argparse.Namespace) -> int:
    from posthorn.certs import write_selfsigned

    hostname = args.hostname or socket.getfqdn()
    try:
        write_selfsigned(hostname, Path(args.cert), Path(args.key), days=args.days)
    except OSError as exc:
        print(f"posthorn: cannot write certificate: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    print(f"wrote {args.cert} (CN={hostname}) and {args.key}")
    print(f'[tls]\ncert = "{Path(args.cert).absolute()}"\nkey = "{Path(args.key).absolute()}"')
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tls = sub.add_parser("tls", help="TLS certificates")
    actions = tls.add_subparsers(dest="action", required=True, metavar="ACTION")
    selfsigned = actions.add_parser("selfsigned", help="create a self-signed development cert")
    selfsigned.add_argument("--cert", required=True, metavar="FILE", help="certificate (PEM)")
    selfsigned.add_argument("--key", required=True, metavar="FILE", help="private key (PEM)")
    selfsigned.add_argument("--hostname", help="name in the certificate (default: this host)")
    selfsigned.add_argument("--days", type=int, default=825, help="validity in days")
    selfsigned.set_defaults(func=cmd_selfsigned)
