"""Worker processes: several copies of the server sharing the listening ports and queue.

Owns: forking N workers before any event loop exists, restarting a worker that dies
(with a growing pause, so that a worker that cannot start does not spin), forwarding
SIGTERM and SIGINT to every worker and waiting for them, workers that die with the
supervisor (Linux PR_SET_PDEATHSIG), and the exit status. Each worker runs the whole
server (listeners bound with SO_REUSEPORT, so that the kernel spreads connections over
them; its own queue runner under its own lease name); the queue store is what they
share. Does not own what a worker does (`daemon.serve`).

Postfix gets the same effect from its many smtpd processes: one Python process is one
core, and parsing SMTP is CPU work.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from posthorn import log

__all__ = ["cpu_count", "supervise"]

_log = log.get("master")
_RESTART_PAUSE = (0.1, 0.5, 1.0, 5.0, 30.0)
_PR_SET_PDEATHSIG = 1


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the supervisor dies, even by SIGKILL, so that no worker
    keeps serving (and delivering) on its own."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _fork(index: int, work: Callable[[int], int]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(0)
        code = 70  # EX_SOFTWARE, if the worker raises
        try:
            code = work(index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def supervise(count: int, work: Callable[[int], int]) -> int:
    """Run `work(index)` in `count` child processes until SIGTERM or SIGINT."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    children: dict[int, int] = {}  # pid -> worker index
    restarts = [0] * count
    for index in range(count):
        children[_fork(index, work)] = index
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _log.info("started %d worker processes", count)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in children:
            continue
        index = children.pop(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if stopping:
            status = status or max(exit_code, 0)
            continue
        pause = _RESTART_PAUSE[min(restarts[index], len(_RESTART_PAUSE) - 1)]
        restarts[index] += 1
        _log.warning("worker %d (pid %d) exited with %d; restarting", index, pid, exit_code)
        time.sleep(pause)
        if not stopping:
            children[_fork(index, work)] = index
    return status
