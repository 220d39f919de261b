"""Forward files: a user's own redirection of their mail (`.forward`, classic sendmail).

Owns: where a user's forward file is (`~/.forward` for system users, else
`<data-dir>/mail/<user>/forward`), the checks that make it safe to honour (a regular
file, owned by the user or root, writable by no one else; as sendmail and Postfix
require), and its grammar: targets separated by commas or new lines, `#` comment lines,
the same target kinds as aliases (`\\user` keeps a copy in the user's own mailbox).
Does not own what the targets mean (`expand.py`).

Never raises: an unsafe or unreadable file is logged and ignored (mail goes to the
mailbox), a bad target is logged and skipped.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from posthorn import log
from posthorn.routing.accounts import Account
from posthorn.routing.aliases import AliasTable, IncludeTarget, Problem, Target, parse_targets

__all__ = ["Forward", "ForwardFiles", "include_problems", "parse_forward"]

_log = log.get("local")
_MAX_SIZE = 64 * 1024  # a forward file is a few lines; anything bigger is a mistake


@dataclass(frozen=True, slots=True)
class Forward:
    path: str
    targets: tuple[Target, ...]
    owner: str  # the account whose privileges file and pipe targets use


def parse_forward(text: str) -> tuple[tuple[Target, ...], list[Problem]]:
    targets: list[Target] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        found, bad = parse_targets(line, number)
        targets.extend(found)
        problems.extend(bad)
    return tuple(targets), problems


def include_problems(table: AliasTable) -> list[str]:
    """Problems of the :include: files an aliases table names, as `path: problem` lines
    (they share the forward-file grammar): unreadable files and bad lines."""
    out = []
    paths = sorted(
        {t.path for a in table.entries.values() for t in a.targets if isinstance(t, IncludeTarget)}
    )
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            out.append(f"{path}: cannot read: {exc.strerror}")
            continue
        out.extend(f"{path}: {problem}" for problem in parse_forward(text)[1])
    return out


_ABSENT_FOR = 1.0  # seconds a missing forward file is taken to be still missing
_ABSENT_MAX = 10_000


class ForwardFiles:
    def __init__(self, data_dir: str, default_user: str, enabled: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self._mail_dir = os.path.join(str(self.data_dir), "mail")
        self.default_user = default_user
        self.enabled = enabled
        # Paths found missing, until when to believe it (monotonic seconds). Most users
        # have no forward file: a second's memory spares an open() per recipient under
        # load; a new forward file counts from the next second.
        self._absent: dict[str, float] = {}

    def path_for(self, user: str, account: Account | None) -> Path:
        return Path(self._path(user, account))

    def _path(self, user: str, account: Account | None) -> str:
        # Plain strings: this runs for every local recipient of every message.
        if account is not None:
            return os.path.join(account.home, ".forward")
        return os.path.join(self._mail_dir, user, "forward")

    def find(self, user: str, account: Account | None) -> Forward | None:
        """The forward file of mailbox `user` (a system `account` or not), if it has one."""
        if not self.enabled:
            return None
        path = self._path(user, account)
        text = self._read(path, account)
        if text is None:
            return None
        targets, problems = parse_forward(text)
        for problem in problems:
            _log.warning("%s: %s", path, problem)
        if not targets:
            return None
        owner = account.name if account is not None else self.default_user
        return Forward(path, targets, owner)

    def _read(self, path: str, account: Account | None) -> str | None:
        now = time.monotonic()
        if self._absent.get(path, 0.0) > now:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            if len(self._absent) > _ABSENT_MAX:
                self._absent.clear()
            self._absent[path] = now + _ABSENT_FOR
            return None
        except OSError as exc:
            _log.warning("%s: ignored: %s", path, exc.strerror)
            return None
        with os.fdopen(fd, "rb") as file:
            st = os.fstat(file.fileno())
            problem = _unsafe(st, account)
            if problem:
                _log.warning("%s: ignored: %s", path, problem)
                return None
            return file.read(_MAX_SIZE).decode("utf-8", "replace")


def _unsafe(st: os.stat_result, account: Account | None) -> str:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    owners = {0, os.geteuid()} if account is None else {0, account.uid}
    if st.st_uid not in owners:
        return f"owned by uid {st.st_uid}, not by the user or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others"
    return ""
