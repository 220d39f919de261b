"""Content segments: large message contents, appended to files beside the SQLite queue.

Owns: appending a content to this process's active segment file (one write, no sync of
its own), the fdatasync that the store's writer does for all appends of a group commit,
reading a content back, and collecting segments that no queued message needs any more.

Why: SQLite writes a large blob twice (to its log, then at the checkpoint, page by page)
and costs several times what one append to a file does. A message of `INLINE_MAX` octets
or less stays in the database, where small rows are cheapest; a larger one is appended
here, and its row in `contents` names the segment, offset and length instead.

Durability: the writer appends, commits the row, then syncs the segment before the log
(`SegmentWriter.sync` then the log's fdatasync), and answers only after both. Bytes
appended for a transaction that rolled back, or that a crash cut short, are garbage that
no row names; a segment is deleted once no row names it (see `collect`).

Does not own the SQL (`sqlite_rows.py`) or the writer thread (`sqlite.py`). Raises
OSError.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

__all__ = ["INLINE_MAX", "SEGMENT_SIZE", "SegmentWriter", "inactive", "read", "unused"]

INLINE_MAX = 16 * 1024  # larger contents go to a segment
SEGMENT_SIZE = 64 * 1024 * 1024  # a segment takes no new content past this size
_SUFFIX = ".seg"


class SegmentWriter:
    """This process's active segment. Holds an exclusive flock(2) on it while it is
    active, so that collectors (in any process) leave it alone."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._dirty = False

    def append(self, data: bytes) -> tuple[str, int]:
        """Write `data` at the end of the active segment: (segment name, offset)."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        offset = self._size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            # A short write (disk full) leaves garbage that no row will name; the next
            # content starts after it.
            self._size = os.fstat(self._fd).st_size
            raise
        self._size += len(data)
        self._dirty = True
        return self._name, offset

    def sync(self) -> None:
        """Make every append so far durable; then start a new segment when this one
        is full (it is closed only once all it holds is on disk)."""
        if self._fd is None or not self._dirty:
            return
        os.fdatasync(self._fd)
        self._dirty = False
        if self._size >= SEGMENT_SIZE:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock: collectors may now look at it
            self._fd = None

    def _open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns():x}-{os.getpid()}{_SUFFIX}"
        fd = os.open(
            self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
        fcntl.flock(fd, fcntl.LOCK_EX)
        # The new name must survive a crash as surely as the bytes written under it.
        _sync_directory(self.directory)
        self._fd, self._name, self._size, self._dirty = fd, name, 0, False


def read(directory: Path, name: str, offset: int, length: int) -> bytes:
    """A content stored in segment `name`. Raises OSError (FileNotFoundError when the
    segment was collected: its message is gone) or EOFError when it is cut short."""
    if "/" in name or not name.endswith(_SUFFIX):
        raise FileNotFoundError(f"not a segment name: {name!r}")
    with open(directory / name, "rb", buffering=0) as file:
        data = os.pread(file.fileno(), length, offset)
    if len(data) != length:
        raise EOFError(f"segment {name} holds {len(data)} of {length} octets at {offset}")
    return data


def inactive(directory: Path, older_than: float = 0.0) -> list[str]:
    """Segments that no process is appending to, last written more than `older_than`
    seconds ago."""
    try:
        names = [p.name for p in directory.iterdir() if p.name.endswith(_SUFFIX)]
    except FileNotFoundError:
        return []
    found = []
    now = time.time()
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            if now - (directory / name).stat().st_mtime >= older_than and not _active(
                directory / name
            ):
                found.append(name)
    return found


def unused(directory: Path, name: str) -> None:
    """Delete an inactive segment that no row names (the caller checked both, and made
    the removal of the last row durable first)."""
    with contextlib.suppress(FileNotFoundError):
        (directory / name).unlink()


def _active(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
