"""Logging set-up: one line per event, Postfix style, keyed by queue id.

Owns: the log format (`posthorn/smtpd[pid]: QUEUEID: to=<bob@example.org>, ...`), the
level from config, the named loggers each component uses, and writing the lines: those
logged during one turn of the event loop go out in one write when the turn ends (a
write per line cost several percent of the accept path: three lines per connection);
lines from other threads, or with no loop running, at once, after any that wait.
`flush()` writes what waits (the stdlib's exit handler calls it too); a process killed
by SIGKILL loses at most the lines of its last loop turn. Does not own what is logged:
each component writes its own lines.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

__all__ = ["flush", "get", "setup"]

_FORMAT = "%(asctime)s %(hostname)s posthorn/%(component)s[%(process)d]: %(message)s"


class _Formatter(logging.Formatter):
    """The stdlib formatter with the time formatted once per second, not per line."""

    _second = -1
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._text = time.strftime(datefmt or "%b %d %H:%M:%S", time.localtime(second))
        return self._text


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes once per event-loop turn (see the module doc)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        try:
            line = self.format(record)
        except Exception:  # the stdlib's contract: report, never raise
            self.handleError(record)
            return
        self._pending.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                text = "\n".join(self._pending) + "\n"
                self._pending.clear()
                try:
                    self.stream.write(text)
                except (OSError, ValueError):  # closed or broken stream: nothing to do
                    return
            super().flush()


class _Fields(logging.Filter):
    def __init__(self, hostname: str) -> None:
        super().__init__()
        self.hostname = hostname

    def filter(self, record: logging.LogRecord) -> bool:
        record.hostname = self.hostname
        record.component = record.name.rpartition(".")[2]
        return True


def setup(level: str, hostname: str, stream: object = None) -> None:
    """Send posthorn.* loggers to stderr (or `stream`) in the one-line format."""
    handler = _Handler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(_Formatter(_FORMAT, datefmt="%b %d %H:%M:%S"))
    handler.addFilter(_Fields(hostname))
    root = logging.getLogger("posthorn")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The format names no source line or thread: skip the stdlib's per-record stack walk
    # and thread lookups (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def get(component: str) -> logging.Logger:
    """The logger of one component: smtpd, queue, local, smtp, bounce, ..."""
    return logging.getLogger(f"posthorn.{component}")


def flush() -> None:
    """Write the lines still waiting for the end of a loop turn (before os._exit)."""
    for handler in logging.getLogger("posthorn").handlers:
        handler.flush()
