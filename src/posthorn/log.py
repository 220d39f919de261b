"""Logging set-up: one line per event, Postfix style, keyed by queue id.

Owns: the log format (`posthorn/smtpd[pid]: QUEUEID: to=<bob@example.org>, ...`), the
level from config, and the named loggers each component uses. Does not own what is
logged: each component writes its own lines.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["get", "setup"]

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
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
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
