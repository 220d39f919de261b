"""Dropping root: after the listeners are bound, the daemon runs as an ordinary user.

Owns: looking up the configured user and group, handing the data directory to them
(queue, mailboxes, control socket), and giving up root for good (supplementary groups,
then group, then user; then checking that root cannot be had back). Does not own when
this happens (the daemon calls it once its sockets are bound, so that port 25 needs root
for a moment only).

Raises `PrivilegeError` (a `ValueError`) for an unknown user or group, or when root
could be regained.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

__all__ = ["PrivilegeError", "drop_privileges"]


class PrivilegeError(ValueError):
    """The privileges cannot be dropped as configured."""


def _ids(user: str, group: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise PrivilegeError(f"server.user: no such user {user!r}") from exc
    if not group:
        return entry.pw_uid, entry.pw_gid
    try:
        return entry.pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise PrivilegeError(f"server.group: no such group {group!r}") from exc


def _hand_over(data_dir: Path, uid: int, gid: int) -> None:
    """Make the data directory tree the user's (it was created by root)."""
    for root, dirs, files in os.walk(data_dir):
        for name in (root, *(os.path.join(root, n) for n in dirs + files)):
            st = os.lstat(name)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(name, uid, gid)


def drop_privileges(user: str, group: str, data_dir: str) -> bool:
    """Become `user` when running as root; False when there was nothing to drop."""
    if not user or os.geteuid() != 0:
        return False
    uid, gid = _ids(user, group)
    if uid == 0:
        return False
    _hand_over(Path(data_dir), uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.setuid(0)
    except PermissionError:
        return True
    raise PrivilegeError("root privileges could be regained after dropping them")
