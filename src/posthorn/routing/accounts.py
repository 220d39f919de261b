"""Accounts of this machine (system users): who they are, where they live, their names.

Owns: the `Account` value (name, uid, gid, home, full name), parsing passwd(5) text, and
looking accounts up either through the system's database (`pwd`, so NSS sources such as
LDAP work) or in a passwd-format file named in config (re-read when it changes). Does not
own privilege changes (`posthorn.delivery.privileges`) or what makes an account a mail
user (`router.py`).

Never raises for a missing or unreadable file: the account is simply unknown.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Account", "Accounts", "parse_passwd"]


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    full_name: str = ""


def _full_name(gecos: str, name: str) -> str:
    # GECOS: the first comma-separated field is the full name; '&' stands for the login
    # name, capitalised (the BSD convention finger(1) and sendmail follow).
    return gecos.split(",", 1)[0].replace("&", name.capitalize()).strip()


def parse_passwd(text: str) -> dict[str, Account]:
    """Accounts from passwd(5) lines `name:pw:uid:gid:gecos:home:shell`; bad lines are
    skipped, as getpwent(3) does."""
    found: dict[str, Account] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or line.startswith(("#", "+", "-")):
            continue
        name, _, uid, gid, gecos, home, _ = fields
        if not (uid.isdigit() and gid.isdigit()) or name in found:
            continue
        found[name] = Account(name, int(uid), int(gid), home, _full_name(gecos, name))
    return found


class Accounts:
    """Account lookup: `source` '' is the system database, else a passwd-format file."""

    def __init__(self, source: str = "") -> None:
        self.path = Path(source) if source else None
        self._stamp: tuple[int, int] | None = None
        self._table: dict[str, Account] = {}

    def get(self, name: str) -> Account | None:
        if self.path is None:
            return self._system(name)
        return self._file().get(name)

    def by_uid(self, uid: int) -> Account | None:
        if self.path is None:
            try:
                return self._of(pwd.getpwuid(uid))
            except KeyError:
                return None
        return next((a for a in self._file().values() if a.uid == uid), None)

    def all(self) -> list[Account]:
        """Every account (for full-name searches); the system database is enumerated."""
        if self.path is None:
            return [self._of(entry) for entry in pwd.getpwall()]
        return list(self._file().values())

    @staticmethod
    def _of(entry: pwd.struct_passwd) -> Account:
        name = entry.pw_name
        return Account(
            name, entry.pw_uid, entry.pw_gid, entry.pw_dir, _full_name(entry.pw_gecos, name)
        )

    def _system(self, name: str) -> Account | None:
        try:
            return self._of(pwd.getpwnam(name))
        except KeyError:
            return None

    def _file(self) -> dict[str, Account]:
        assert self.path is not None
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._table = parse_passwd(self.path.read_text(encoding="utf-8", errors="replace"))
                self._stamp = stamp
        except OSError:
            self._table, self._stamp = {}, None
        return self._table
