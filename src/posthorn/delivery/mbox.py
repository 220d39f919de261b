"""mbox delivery: one message appended to one mbox file, locked and crash-safe.

Owns: the mbox entry format (a `From sender date` separator line with the envelope
sender and the asctime date, `>From ` quoting of body lines in the mboxrd way: every
line that matches `^>*From ` gets one more `>`, so readers can undo it exactly, and an
empty line after each message), locking as mutt, procmail and Postfix do on Linux (a
`PATH.lock` dotlock created with link(2), stale after five minutes, then an fcntl
write lock on the file; our own dotlock names its process and host, so that one left by
a killed Posthorn process is taken over at once, not after five minutes), and
atomicity: the file's size is noted before the append and the file is truncated back to
it when the write or fsync fails. A process killed in the middle of a write cannot
truncate, so the append first leaves a note beside the mbox (`.NAME.posthorn-append`:
where it starts, where it will end, how it begins) and the next append to that mbox cuts
such a half-written entry off; an entry that is whole, or that someone else wrote after,
is left alone. An append repeated after a crash that followed a successful write finds
its own entry at the end of the file and is not written twice. Does not own line
endings (the caller passes LF content) or which file.

Raises OSError (file system errors) and `MailboxBusy` (a subclass: the lock could not
be had in time); the caller turns them into outcomes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from posthorn.address import Address

__all__ = ["MailboxBusy", "append", "entry", "from_line", "quote"]

_FROM = re.compile(rb"^(>*From )", re.MULTILINE)
_STALE = 300.0  # seconds after which a dotlock is considered left behind (Debian policy)


class MailboxBusy(OSError):
    """Another program holds the mailbox lock for longer than we wait."""


def from_line(sender: Address | None, when: float) -> bytes:
    """`From sender Mon Jul 19 12:47:34 1993`: MAILER-DAEMON for the null sender."""
    who = "MAILER-DAEMON" if sender is None else str(sender)
    # The separator line is split at spaces by readers; a quoted local part may hold some.
    who = "".join("_" if ch.isspace() else ch for ch in who)
    return f"From {who} {time.asctime(time.gmtime(when))}\n".encode()


def quote(content: bytes) -> bytes:
    """mboxrd quoting: `From ` and `>From ` lines get one more `>`."""
    return _FROM.sub(rb">\1", content)


def entry(sender: Address | None, when: float, content: bytes) -> bytes:
    """The bytes one message adds to an mbox: separator, quoted content, empty line."""
    body = quote(content)
    if not body.endswith(b"\n"):
        body += b"\n"
    return from_line(sender, when) + body + b"\n"


@contextlib.contextmanager
def _dotlock(
    path: Path, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    unique = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{time.time_ns()}")
    try:
        fd = os.open(unique, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # The directory is not ours to write (a file target in /tmp-like places):
        # the fcntl lock alone protects the file, as mutt does without dotlock rights.
        yield
        return
    try:
        # Dovecot's format, PID:HOST (liblockfile's readers take the leading pid): a
        # pid means nothing on another machine sharing the spool.
        os.write(fd, f"{os.getpid()}:{socket.gethostname()}\n".encode())
    finally:
        os.close(fd)
    try:
        while True:
            try:
                os.link(unique, lock)
                break
            except FileExistsError:
                pass
            with contextlib.suppress(FileNotFoundError):
                seen = os.stat(lock)
                if time.time() - seen.st_mtime > _STALE or _abandoned(lock, seen.st_ino):
                    # Only the lock we judged: another waiter may have replaced it.
                    if os.stat(lock).st_ino == seen.st_ino:
                        os.unlink(lock)
                    continue
            if clock() > deadline:
                raise MailboxBusy(errno.EAGAIN, f"{lock} held by another program")
            sleep(0.05)
    finally:
        os.unlink(unique)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def _abandoned(lock: Path, inode: int) -> bool:
    """A dotlock that names a process of this host (PID:HOST, as Posthorn and Dovecot
    write it), and that process is gone: killed before it could remove the lock.
    Another program's lock, or one from another host, is only ever stale by its age."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_ino != inode:
            return False  # replaced since: judge it on the next round
        pid, colon, host = os.read(fd, 256).strip().partition(b":")
    except OSError:
        return False
    finally:
        os.close(fd)
    if not (colon and pid.isdigit() and host == socket.gethostname().encode()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False  # EPERM: alive, and someone else's
    return False


def _fcntl_lock(
    fd: int, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> None:
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        if clock() > deadline:
            raise MailboxBusy(errno.EAGAIN, "mailbox is locked by another program")
        sleep(0.05)


def _separator(fd: int, size: int) -> bytes:
    """What must come first so that our `From ` line starts after an empty line."""
    if size == 0:
        return b""
    tail = os.pread(fd, 2, max(0, size - 2))
    if tail.endswith(b"\n\n") or tail == b"\n":
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"


def _note_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.posthorn-append")


def _leave_note(note: Path, start: int, data: bytes) -> bool:
    """Say where an append starts and ends, and how it begins; False when the
    directory is not ours to write (then a crash mid-write cannot be undone)."""
    text = f"{start} {start + len(data)} {data[:32].hex()}\n".encode()
    try:
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        raise
    try:
        _write_all(fd, text)
    finally:
        os.close(fd)
    return True


def _undo_interrupted(fd: int, note: Path) -> None:
    """An append that was killed mid-write left its note: cut its partial entry off, but
    only when the file still ends inside that entry with the bytes it began with (a
    complete entry, or mail another program appended since, is kept)."""
    try:
        start, end, head = note.read_text().split()
        start_at, end_at, begins = int(start), int(end), bytes.fromhex(head)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        begins, start_at, end_at = b"", 0, 0
    size = os.fstat(fd).st_size
    if start_at < size < end_at:
        seen = os.pread(fd, min(len(begins), size - start_at), start_at)
        if begins.startswith(seen):
            os.ftruncate(fd, start_at)
            os.fsync(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(note)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append(
    path: Path,
    data: bytes,
    *,
    create_dirs: bool = True,
    lock_timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Append the mbox entry `data` (see `entry`); False when it is already the last
    entry of the file (a repeated delivery after a crash)."""
    if create_dirs:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = clock() + lock_timeout
    with _dotlock(path, deadline, clock, sleep):
        # O_NOFOLLOW: a symlink planted in place of the mailbox must not redirect us.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                raise OSError(errno.EPERM, f"{path}: not a regular file with one link")
            _fcntl_lock(fd, deadline, clock, sleep)
            note = _note_path(path)
            _undo_interrupted(fd, note)
            size = os.fstat(fd).st_size
            if size >= len(data) and os.pread(fd, len(data), size - len(data)) == data:
                return False
            written = _separator(fd, size) + data
            noted = _leave_note(note, size, written)
            try:
                _write_all(fd, written)
                os.fsync(fd)
            except BaseException:
                # A failed append must not leave half a message: cut back to where we began.
                os.ftruncate(fd, size)
                os.fsync(fd)
                raise
            finally:
                if noted:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(note)
            return True
        finally:
            os.close(fd)  # closing releases the fcntl lock
