"""What every subcommand shares: exit codes, common options, loading config, running async.

Owns: the sysexits.h codes, the argument parser every command uses (`Parser`: usage
errors exit 64, EX_USAGE), `--config`/`--data-dir`, and `run()` (uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

from posthorn import config as cfg

__all__ = [
    "EX_CANTCREAT",
    "EX_CONFIG",
    "EX_DATAERR",
    "EX_IOERR",
    "EX_NOINPUT",
    "EX_NOPERM",
    "EX_NOUSER",
    "EX_OK",
    "EX_PROTOCOL",
    "EX_SOFTWARE",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "Parser",
    "add_common",
    "load_config",
    "run",
]

T = TypeVar("T")

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_NOPERM = 77
EX_CONFIG = 78


class Parser(argparse.ArgumentParser):
    """argparse, with sysexits.h's code for a command line that cannot be used.

    The parsers of subcommands are `_CommandParser`s (and theirs too), so one `Parser`
    at the root covers every command.
    """

    def error(self, message: str) -> NoReturn:
        # argparse exits 2; every posthorn command promises sysexits.h codes, whose
        # EX_USAGE (64) is "the command was used incorrectly".
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _CommandParser)
        return super().add_subparsers(**kwargs)


class _CommandParser(Parser):
    """A subcommand's parser: it reports words it does not know itself, with its own
    usage line (argparse would leave them to the root, whose usage names no options)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file ($POSTHORN_CONFIG)")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides config)")


def load_config(args: argparse.Namespace, **overrides: Any) -> cfg.Config:
    """The resolved config for a command: file (if any), then command-line overrides."""
    return cfg.resolve(cfg.load(args.config), data_dir=args.data_dir, **overrides)


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on uvloop when it is installed (the `fast` extra), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())
