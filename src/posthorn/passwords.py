"""The password file of SMTP AUTH users: scrypt hashes, one `user:hash` line each.

Owns: the hash format (`$scrypt$ln=15,r=8,p=1$SALT$HASH`, salt and hash in unpadded
base64; scrypt from hashlib, RFC 7914), hashing and constant-time verification, parsing
and writing the file (atomically, mode 0600), and a reader that reloads the file when it
changes so that `posthorn passwd` takes effect without a restart. Does not own SASL
(`receive/auth.py`) or throttling.

Raises `PasswordFileError` (a `ValueError`) for a malformed file or hash; `verify` never
raises for a wrong password, it returns False. A user name that is missing is verified
against a dummy hash, so that timing does not tell which users exist.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PasswordFile", "PasswordFileError", "hash_password", "parse", "render", "verify"]


class PasswordFileError(ValueError):
    """The password file (or one hash in it) is malformed; the message says where."""


_LN = 15  # N = 2**15: ~50 ms and 32 MiB per check on these machines (RFC 7914 section 2)
_R = 8
_P = 1
_HASH = re.compile(
    r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)\Z"
)
# User names: what a SASL authcid may reasonably be, and nothing that breaks the format.
_USER = re.compile(r"[^\s:#][^\s:]{0,254}\Z")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: bytes, salt: bytes, ln: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=2**ln, r=r, p=p, maxmem=2**26, dklen=32)


def hash_password(password: str, *, ln: int = _LN, salt: bytes | None = None) -> str:
    """A new scrypt hash string for `password` (UTF-8), with a random 16-octet salt."""
    salt = os.urandom(16) if salt is None else salt
    digest = _scrypt(password.encode("utf-8"), salt, ln, _R, _P)
    return f"$scrypt$ln={ln},r={_R},p={_P}${_b64(salt)}${_b64(digest)}"


def verify(password: str, hashed: str) -> bool:
    """True when `password` matches `hashed`. Raises PasswordFileError for a bad hash."""
    match = _HASH.match(hashed)
    if match is None:
        raise PasswordFileError("not a $scrypt$ hash")
    ln, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if not (1 <= ln <= 20 and 1 <= r <= 32 and 1 <= p <= 4):
        raise PasswordFileError("scrypt parameters out of range")
    expected = _unb64(match.group(5))
    digest = _scrypt(password.encode("utf-8"), _unb64(match.group(4)), ln, r, p)
    return hmac.compare_digest(digest, expected)


# Verifying a missing user costs as much as verifying a real one.
@functools.cache
def _dummy() -> str:
    """A hash to check unknown users against, so that they take as long as known ones;
    made on first use, not at import (it costs a whole scrypt)."""
    return hash_password("", salt=b"posthorn-dummy!!")


def parse(text: str, origin: str = "passwd") -> dict[str, str]:
    """`user:hash` lines; blank lines and `#` comments are skipped."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not _USER.match(user) or _HASH.match(hashed) is None:
            raise PasswordFileError(f"{origin}:{number}: expected user:$scrypt$... hash")
        users[user] = hashed
    return users


def render(users: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(users.items()))


def check_user_name(user: str) -> None:
    """Raises PasswordFileError when `user` cannot be stored in the file."""
    if not _USER.match(user):
        raise PasswordFileError(f"invalid user name {user!r}")


@dataclass(slots=True)
class PasswordFile:
    """The password file at `path`, re-read whenever its modification time changes."""

    path: Path
    _stamp: tuple[int, int] | None = None
    _users: dict[str, str] | None = None

    def users(self) -> dict[str, str]:
        """The current users; {} when the file does not exist. Raises PasswordFileError."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._users is None or stamp != self._stamp:
            self._users = parse(self.path.read_text(encoding="utf-8"), str(self.path))
            self._stamp = stamp
        return self._users

    def check(self, user: str, password: str) -> bool:
        """True for a known user with the right password (blocking: run it in a thread)."""
        hashed = self.users().get(user)
        ok = verify(password, hashed or _dummy())
        return ok and hashed is not None

    def set(self, user: str, password: str) -> None:
        """Add or change one user, replacing the file atomically (mode 0600)."""
        check_user_name(user)
        users = dict(self.users())
        users[user] = hash_password(password)
        self._write(users)

    def remove(self, user: str) -> bool:
        users = dict(self.users())
        if users.pop(user, None) is None:
            return False
        self._write(users)
        return True

    def _keep_owner(self, fd: int) -> None:
        """Root editing the file must not take it away from the daemon's own user: the
        new file gets the owner of the old one (or of its directory)."""
        if os.geteuid() != 0:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = self.path.parent.stat()
        os.fchown(fd, st.st_uid, st.st_gid)

    def _write(self, users: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".passwd.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                self._keep_owner(out.fileno())
                out.write(render(users))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._users = None
