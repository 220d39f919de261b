"""Delivering with someone else's privileges: file and pipe targets run as their owner.

Owns: `Credentials` (uid, gid, groups, home of an account), finding them for an account
name (the configured account source first, then the system's), whether a switch is
needed (only a root process switches; anyone else delivers as itself), and `run_as`,
which runs a function in a forked child that has dropped to those credentials and
hands back its result or its OSError. A child, because a process's credentials are
shared by all its threads: the server itself never changes user. Does not own what runs.

Raises `LookupError` when an account is unknown, OSError from the function.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from posthorn.routing.accounts import Accounts

__all__ = ["Credentials", "credentials_for", "must_switch", "run_as"]

_system = Accounts("")


@dataclass(frozen=True, slots=True)
class Credentials:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def credentials_for(name: str, accounts: Accounts | None = None) -> Credentials:
    account = (accounts.get(name) if accounts is not None else None) or _system.get(name)
    if account is None:
        raise LookupError(f"no such account {name!r}")
    try:
        groups = tuple(os.getgrouplist(name, account.gid))
    except OSError:
        groups = (account.gid,)
    return Credentials(name, account.uid, account.gid, groups, account.home)


def must_switch(creds: Credentials) -> bool:
    """Only root can (and must) become someone else; anyone else delivers as itself."""
    return os.geteuid() == 0 and creds.uid != 0


def _child(creds: Credentials, fn: Callable[[], bool], out: int) -> None:
    try:
        os.setgroups(list(creds.groups))
        os.setgid(creds.gid)
        os.setuid(creds.uid)
        result: dict[str, object] = {"ok": bool(fn())}
    except OSError as exc:
        result = {"errno": exc.errno or 0, "error": exc.strerror or str(exc)}
    except BaseException as exc:  # anything else is reported, never raised in the child
        result = {"errno": 0, "error": f"{type(exc).__name__}: {exc}"}
    os.write(out, json.dumps(result).encode())


def run_as(creds: Credentials, fn: Callable[[], bool]) -> bool:
    """Run `fn` with `creds` (in a child when switching is needed); blocking."""
    if not must_switch(creds):
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls until _exit, no locks, no logging
        try:
            os.close(read)
            _child(creds, fn, write)
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        chunks.append(pipe.read())
    os.waitpid(pid, 0)
    try:
        result = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        result = {}
    if "ok" in result:
        return bool(result["ok"])
    raise OSError(int(result.get("errno", 0)) or None, str(result.get("error", "child died")))
