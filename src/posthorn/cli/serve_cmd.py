"""`posthorn serve`: run the SMTP server and the queue runner until SIGTERM."""

from __future__ import annotations

import argparse
import sys

from posthorn import log
from posthorn.cli.common import EX_OK, EX_UNAVAILABLE, add_common, load_config, run


def cmd_serve(args: argparse.Namespace) -> int:
    from posthorn import daemon

    config = load_config(args, listen=tuple(args.listen or ()), hold=True if args.hold else None)
    log.setup(config.log.level, config.server.hostname)
    try:
        run(lambda: daemon.serve(config))
    except OSError as exc:
        print(f"posthorn: cannot start: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except KeyboardInterrupt:
        pass
    return EX_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the SMTP server and queue runner")
    add_common(serve)
    serve.add_argument(
        "--listen", action="append", metavar="HOST:PORT", help="listen address (repeatable)"
    )
    serve.add_argument("--hold", action="store_true", help="keep accepted mail on hold")
    serve.set_defaults(func=cmd_serve)
