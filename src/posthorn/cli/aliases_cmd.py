"""`posthorn aliases check FILE`: validate an aliases file (and the files it includes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posthorn.cli.common import EX_DATAERR, EX_NOINPUT, EX_OK
from posthorn.routing.aliases import load_aliases
from posthorn.routing.forward import include_problems


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        table = load_aliases(path)
    except OSError as exc:
        print(f"posthorn: {path}: {exc.strerror}", file=sys.stderr)
        return EX_NOINPUT
    problems = [f"{path}: {p}" for p in table.problems] + include_problems(table)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: {len(problems)} problem(s), {len(table.entries)} aliases usable")
        return EX_DATAERR
    print(f"{path}: {len(table.entries)} aliases, ok")
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    aliases = sub.add_parser("aliases", help="work with aliases files")
    actions = aliases.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate an aliases file",
        description="Read FILE as the server would (and the :include: files it names) and "
        "print each line it would skip. Exit status: 0 ok, 65 problems found, 66 FILE "
        "cannot be read.",
    )
    check.add_argument("file", metavar="FILE", help="the aliases file")
    check.set_defaults(func=cmd_check)
