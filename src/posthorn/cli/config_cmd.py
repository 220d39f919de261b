"""`posthorn config show|check`: print or validate the configuration."""

from __future__ import annotations

import argparse
import sys

from posthorn import config as cfg
from posthorn.cli.common import EX_CONFIG, EX_OK, add_common, load_config


def cmd_show(args: argparse.Namespace) -> int:
    config = cfg.Config() if args.defaults else load_config(args)
    print(cfg.render(config), end="")
    return EX_OK


def cmd_check(args: argparse.Namespace) -> int:
    from posthorn.config.check import Level, check

    config = load_config(args)  # syntax, unknown keys and values: ConfigError, exit 78
    problems = check(config)
    for problem in problems:
        print(f"posthorn: config check: {problem.level.value}: {problem.text}", file=sys.stderr)
    errors = sum(p.level is Level.ERROR for p in problems)
    if errors:
        print(f"posthorn: config check: {errors} error(s)", file=sys.stderr)
        return EX_CONFIG
    print(f"config ok; data_dir={config.server.data_dir}")
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="show or check the configuration")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the effective config as TOML")
    add_common(show)
    show.add_argument("--defaults", action="store_true", help="print the built-in defaults")
    show.set_defaults(func=cmd_show)
    check = actions.add_parser(
        "check",
        help="validate the config, the files it names and data directory permissions",
        description="Validate the configuration, the files it names and the data "
        "directory's permissions. Exits 78 (EX_CONFIG) when there are errors; warnings "
        "are printed but do not fail.",
    )
    add_common(check)
    check.set_defaults(func=cmd_check)
