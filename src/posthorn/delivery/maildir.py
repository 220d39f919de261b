"""Maildir delivery: one message into one Maildir, crash-safe and idempotent.

Owns: the Maildir protocol (write into tmp/, fsync, link into new/, fsync the directory;
https://cr.yp.to/proto/maildir.html) and unique names. The name is derived from the
queue id and recipient index, so that a delivery repeated after a crash finds its own
earlier file and does not deliver twice. Does not own line endings (the caller passes
LF content) or deciding which Maildir.

Raises OSError; the caller turns it into an outcome.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["deliver", "ensure_maildir", "unique_name"]


def _safe(text: str) -> str:
    # Maildir names must not contain '/' or ':' (':' starts the info suffix).
    return text.replace("/", "\\057").replace(":", "\\072")


def unique_name(arrival: float, qid: str, index: int, hostname: str, size: int) -> str:
    """`time.QqidRindex.host,S=size`: unique per queue id and recipient, stable on retry.

    `,S=` gives the size to readers such as Dovecot without a stat().
    """
    return f"{int(arrival)}.Q{qid}R{index}.{_safe(hostname)},S={size}"


def ensure_maildir(path: Path) -> None:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def deliver(path: Path, name: str, content: bytes) -> bool:
    """Deliver `content` as `name`; False when an earlier attempt already did."""
    ensure_maildir(path)
    final = path / "new" / name
    if final.exists():
        return False
    tmp = path / "tmp" / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, final)
    except FileExistsError:
        os.unlink(tmp)
        return False
    os.unlink(tmp)
    # The link is durable only once the directory entry is.
    _fsync_dir(path / "new")
    return True
