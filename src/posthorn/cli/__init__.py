"""The `posthorn` command: an argparse tree where each subcommand calls one function.

Owns: assembling the tree from the command modules (each has `register(sub)`), and
turning config errors into exit code 78 (EX_CONFIG) (usage errors exit 64, EX_USAGE,
through `common.Parser`). Each command module owns its own
arguments and output; none owns behaviour, which lives in the library.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from posthorn import config as cfg
from posthorn.cli import (
    aliases_cmd,
    config_cmd,
    dkim_cmd,
    explain_cmd,
    passwd_cmd,
    queue_cmd,
    read_cmd,
    send_cmd,
    sendmail_cmd,
    serve_cmd,
    tls_cmd,
)
from posthorn.cli.common import EX_CONFIG, EX_OK, Parser

__all__ = ["build_parser", "main"]

_COMMANDS = (
    serve_cmd,
    send_cmd,
    read_cmd,
    sendmail_cmd,
    queue_cmd,
    explain_cmd,
    config_cmd,
    aliases_cmd,
    tls_cmd,
    passwd_cmd,
    dkim_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    # Parser: a usage error in any subcommand exits 64 (EX_USAGE), not argparse's 2.
    parser = Parser(prog="posthorn", description="Posthorn mail transfer agent")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except cfg.ConfigError as exc:
        print(f"posthorn: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except BrokenPipeError:
        # Output piped into `head`: not an error worth a traceback.
        os._exit(EX_OK)
