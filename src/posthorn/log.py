"""Logging set-up: one line per event, Postfix style, keyed by queue id.

Owns: the log format (`posthorn/smtpd[pid]: QUEUEID: to=<bob@example.org>, ...`), the
level from config, and the named loggers each component uses (`Log`). Does not own what
is logged: each component writes its own lines.

Once `setup` has run, a plain line (no traceback) is formatted and written directly:
an accepted message logs one line and a connection two, and the stdlib's way (a
LogRecord, the logger hierarchy, filters, a formatter) cost about three times as much
as the line itself. Lines with a traceback, and lines logged before `setup` (tests, the
command-line tools), take the stdlib's way, so `caplog` and handlers still see them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO

__all__ = ["Log", "get", "setup"]

_FORMAT = "%(asctime)s %(hostname)s posthorn/%(component)s[%(process)d]: %(message)s"
_DATEFMT = "%b %d %H:%M:%S"


class _Formatter(logging.Formatter):
    """The stdlib formatter with the time formatted once per second, not per line."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(int(record.created))

    def stamp(self, second: int) -> str:
        if second != self._second:
            self._second = second
            self._text = time.strftime(_DATEFMT, time.localtime(second))
        return self._text


class _LineHandler(logging.StreamHandler[IO[str]]):
    """The one handler: records (with tracebacks) through `emit`, plain lines through
    `line`; both under the handler's lock, so lines from threads never interleave."""

    def __init__(self, stream: IO[str], hostname: str) -> None:
        super().__init__(stream)
        self.hostname = hostname
        self.stamps = _Formatter(_FORMAT, datefmt=_DATEFMT)
        self.setFormatter(self.stamps)
        self.pid = os.getpid()

    def emit(self, record: logging.LogRecord) -> None:
        record.hostname = self.hostname
        record.component = record.name.rpartition(".")[2]
        super().emit(record)

    def line(self, component: str, text: str) -> None:
        stamp = self.stamps.stamp(int(time.time()))
        out = f"{stamp} {self.hostname} posthorn/{component}[{self.pid}]: {text}\n"
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            try:
                # Written and flushed at once: a client may read the reply that follows
                # this line, and a test or an operator then expects the line in the log.
                self.stream.write(out)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a log that cannot be written must not stop the mail


_handler: _LineHandler | None = None
_level = logging.INFO


def _forked() -> None:
    if _handler is not None:
        _handler.pid = os.getpid()  # a worker process names itself


os.register_at_fork(after_in_child=_forked)


class Log:
    """A component's logger: `info("%s: ...", qid)` as with the stdlib's."""

    __slots__ = ("component", "logger")

    def __init__(self, component: str) -> None:
        self.component = component
        self.logger = logging.getLogger(f"posthorn.{component}")

    def _log(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        handler = _handler
        if handler is None:
            self.logger.log(level, msg, *args, stacklevel=3)
        elif level >= _level:
            handler.line(self.component, msg % args if args else msg)

    def debug(self, msg: str, *args: object) -> None:
        self._log(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._log(logging.INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._log(logging.WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(logging.ERROR, msg, args)

    def exception(self, msg: str, *args: object) -> None:
        """An error line with the traceback of the exception being handled."""
        self.logger.exception(msg, *args, stacklevel=2)


def setup(level: str, hostname: str, stream: IO[str] | None = None) -> None:
    """Send posthorn.* logging to stderr (or `stream`) in the one-line format."""
    global _handler, _level
    handler = _LineHandler(stream or sys.stderr, hostname)
    root = logging.getLogger("posthorn")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    _level = root.level
    _handler = handler
    # The format names no source line or thread: skip the stdlib's per-record stack walk
    # and thread lookups (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def get(component: str) -> Log:
    """The logger of one component: smtpd, queue, local, smtp, bounce, ..."""
    return Log(component)
