"""Mailboxes on disk for the reader, opened with the stdlib `mailbox` module.

Owns: telling a Maildir from an mbox, numbering the messages (Maildir by file name, which
starts with the delivery time; mbox in file order), reading just the header section of
each for a listing, loading one message, marking a message seen, and saving attachments
under safe file names. Marking seen follows each format: a Maildir message moves from
new/ to cur/ with the S flag in its info (`cur/NAME:2,S`) by a rename, never a rewrite
(https://cr.yp.to/proto/maildir.html); an mbox message gets `Status: RO` as mail(1)
writes it, the file rewritten under the mailbox lock. Does not own decoding or layout
(`view.py`).

Raises `MailboxError` for a path that is neither format; OSError for I/O trouble.
"""

from __future__ import annotations

import email
import mailbox
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy as policies
from email.message import EmailMessage
from pathlib import Path
from typing import cast

__all__ = ["Entry", "MailboxError", "Reader", "save_parts"]

_HEAD_CHUNK = 8192
_MAX_HEAD = 256 * 1024
_SIZE = re.compile(r",S=(\d+)")
# mbox Status/X-Status letters -> Maildir flags (the mailbox module's own mapping).
_MBOX_TO_MAILDIR = {"R": "S", "A": "R", "F": "F", "D": "T"}


class MailboxError(Exception):
    """The path is not a mailbox this reader understands."""


@dataclass(frozen=True, slots=True)
class Entry:
    number: int  # 1-based, as the user names it
    key: str  # the mailbox module's key (for mbox an int, whatever the stubs say)
    flags: str  # Maildir flag letters, sorted: D F P R S T
    new: bool  # not yet looked at by any reader (Maildir new/, mbox without O)
    size: int
    head: bytes  # the header section, up to the blank line

    @property
    def seen(self) -> bool:
        return "S" in self.flags


def _head(path: str, name: str) -> tuple[bytes, int]:
    """The header section of a message file and the file's size, reading only the head.

    The size comes from the name's `,S=` when there is one (Posthorn and Dovecot write
    it), which saves a stat per message."""
    with open(path, "rb") as file:
        data = file.read(_HEAD_CHUNK)
        while b"\n\n" not in data and len(data) < _MAX_HEAD:
            more = file.read(_HEAD_CHUNK)
            if not more:
                break
            data += more
        sized = _SIZE.search(name)
        size = int(sized.group(1)) if sized else os.fstat(file.fileno()).st_size
    end = data.find(b"\n\n")
    return (data if end < 0 else data[: end + 1]), size


def _leading_number(key: str) -> tuple[int, str]:
    head = key.split(".", 1)[0]
    return (int(head) if head.isdigit() else 1 << 62, key)


class _Maildir(mailbox.Maildir):
    """The stdlib Maildir plus the one thing a reader needs that it keeps private: where
    each message's file is (`new/NAME` or `cur/NAME:2,FLAGS`). Python 3.13's get_info
    gives the flags but not new/ versus cur/."""

    def subpath(self, key: str) -> str:
        return cast(str, self._lookup(key))  # type: ignore[attr-defined]

    def subpaths(self) -> dict[str, str]:
        """Every key's subpath from one scan of new/ and cur/: `keys()` would stat each
        file once more, which a listing of 10,000 messages feels."""
        self._refresh()  # type: ignore[attr-defined]
        return dict(self._toc)  # type: ignore[attr-defined]


class Reader:
    """One mailbox opened for reading: its entries, messages, and seen flags."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._maildir: _Maildir | None = None
        self._mbox: mailbox.mbox | None = None
        if (path / "cur").is_dir() and (path / "new").is_dir():
            self._maildir = _Maildir(path, create=False)
        elif path.is_file():
            self._mbox = mailbox.mbox(path, create=False)
        else:
            raise MailboxError(f"{path}: not a Maildir or mbox")
        self._entries: list[Entry] | None = None

    @property
    def kind(self) -> str:
        return "maildir" if self._maildir is not None else "mbox"

    def entries(self) -> list[Entry]:
        if self._entries is None:
            self._entries = self._maildir_entries() if self._maildir else self._mbox_entries()
        return self._entries

    def _maildir_entries(self) -> list[Entry]:
        box = self._maildir
        assert box is not None
        found: list[Entry] = []
        subpaths = box.subpaths()
        root = str(self.path)
        for key in sorted(subpaths, key=_leading_number):
            subpath = subpaths[key]
            subdir, _, name = subpath.partition(os.sep)
            info = name.partition(box.colon)[2]
            flags = "".join(sorted(info[2:])) if info.startswith("2,") else ""
            try:
                head, size = _head(os.path.join(root, subpath), name)
            except FileNotFoundError:  # another reader moved or deleted it meanwhile
                continue
            found.append(Entry(len(found) + 1, key, flags, subdir == "new", size, head))
        return found

    def _mbox_entries(self) -> list[Entry]:
        box = self._mbox
        assert box is not None
        found = []
        for number, key in enumerate(box.iterkeys(), start=1):
            data = box.get_bytes(key)
            end = data.find(b"\n\n")
            head = data if end < 0 else data[: end + 1]
            status = self._mbox_status(head)
            flags = "".join(sorted({_MBOX_TO_MAILDIR[c] for c in status if c in _MBOX_TO_MAILDIR}))
            # The key stays as iterkeys gives it (an int, whatever the type stubs say).
            found.append(Entry(number, key, flags, "O" not in status, len(data), head))
        return found

    @staticmethod
    def _mbox_status(head: bytes) -> str:
        letters = ""
        for line in head.split(b"\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"status", b"x-status"):
                letters += value.strip().decode("ascii", "replace")
        return letters

    def entry(self, number: int) -> Entry | None:
        entries = self.entries()
        return entries[number - 1] if 1 <= number <= len(entries) else None

    def message(self, entry: Entry) -> EmailMessage:
        if self._maildir is not None:
            data = self._maildir.get_bytes(entry.key)
        else:
            assert self._mbox is not None
            data = self._mbox.get_bytes(entry.key)
        return email.message_from_bytes(data, policy=policies.default)

    def mark_seen(self, entry: Entry) -> None:
        if self._maildir is not None:
            self._maildir_seen(entry)
        else:
            self._mbox_seen(entry)

    def _maildir_seen(self, entry: Entry) -> None:
        if entry.seen and not entry.new:
            return
        box = self._maildir
        assert box is not None
        old = box.subpath(entry.key)
        flags = "".join(sorted({*entry.flags, "S"}))
        # Maildir: a message a reader has looked at lives in cur/ with its info suffix.
        new = os.path.join("cur", f"{entry.key}{box.colon}2,{flags}")
        os.rename(os.path.join(self.path, old), os.path.join(self.path, new))

    def _mbox_seen(self, entry: Entry) -> None:
        box = self._mbox
        assert box is not None
        box.lock()
        try:
            message = box.get_message(entry.key)
            flags = message.get_flags()
            if "R" in flags and "O" in flags:
                return
            message.set_flags("".join(sorted({*flags, "R", "O"})))
            box[entry.key] = message
            box.flush()
        finally:
            box.unlock()

    def close(self) -> None:
        if self._mbox is not None:
            self._mbox.close()


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]")


def _safe_name(name: str, number: int) -> str:
    """A file name from a message can name any path: keep only a harmless last part."""
    base = re.split(r"[/\\]", name)[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    return base[:200] or f"part-{number}"


def save_parts(parts: Iterable[tuple[int, str, bytes]], directory: Path) -> list[Path]:
    """Write each (number, filename, data) into `directory`, never over an existing file."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    for number, filename, data in parts:
        base = _safe_name(filename, number)
        stem, dot, suffix = base.rpartition(".")
        if not dot:
            stem, suffix = base, ""
        for attempt in range(1000):
            name = base if not attempt else f"{stem}-{attempt}{dot}{suffix}"
            try:
                with open(directory / name, "xb") as file:
                    file.write(data)
            except FileExistsError:
                continue
            saved.append(directory / name)
            break
    return saved
