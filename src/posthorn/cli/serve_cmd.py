"""`posthorn serve`: run the SMTP server and the queue runner until SIGTERM."""

from __future__ import annotations

import argparse
import sys

from posthorn import log, supervisor
from posthorn.cli.common import EX_CONFIG, EX_OK, EX_UNAVAILABLE, add_common, load_config, run
from posthorn.config import Config, ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args, listen=tuple(args.listen or ()), hold=True if args.hold else None)
    log.setup(config.log.level, config.server.hostname)
    workers = config.server.workers or supervisor.cpu_count()
    if workers == 1:
        return _serve(config, None)
    return supervisor.supervise(workers, lambda index: _serve(config, index))


def _serve(config: Config, worker: int | None) -> int:
    from posthorn import daemon

    try:
        run(lambda: daemon.serve(config, worker=worker))
    except OSError as exc:
        print(f"posthorn: cannot start: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except ConfigError as exc:
        print(f"posthorn: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
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
