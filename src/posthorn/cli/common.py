"""What every subcommand shares: exit codes, common options, loading config, running async.

Owns: the sysexits.h codes, `--config`/`--data-dir`, and `run()` (uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
