"""mbox writing: format, mboxrd quoting, locking shared with mutt, truncation on failure."""

from __future__ import annotations

import fcntl
import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthorn.address import Address
from posthorn.delivery import mbox
from support.server import env

WHEN = 743_111_254.0  # Mon Jul 19 19:47:34 1993 UTC


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        (b"From here", b">From here"),
        (b">From quoted", b">>From quoted"),
        (b">>From twice", b">>>From twice"),
        (b"From:header-like", b"From:header-like"),  # no space: not a separator
        (b" From indented", b" From indented"),
        (b"Fromage", b"Fromage"),
    ],
)
def test_mboxrd_quoting(line: bytes, stored: bytes) -> None:
    assert mbox.quote(b"Subject: x\n\n" + line + b"\n") == b"Subject: x\n\n" + stored + b"\n"


def test_entry_has_separator_with_envelope_sender_and_date() -> None:
    item = mbox.entry(Address("ann", "example.org"), WHEN, b"Subject: x\n\nno newline")
    assert item == (b"From ann@example.org Mon Jul 19 19:47:34 1993\nSubject: x\n\nno newline\n\n")
    assert mbox.from_line(None, WHEN).startswith(b"From MAILER-DAEMON Mon Jul 19 ")


def test_appended_messages_read_back_with_python_mailbox(tmp_path: Path) -> None:
    path = tmp_path / "box" / "mbox"
    for i in range(3):
        body = f"Subject: m{i}\n\nFrom the start\n>From quoted\nlast\n".encode()
        assert mbox.append(path, mbox.entry(Address("ann", "example.org"), WHEN, body))
    messages = list(mailbox.mbox(path))
    assert [m["Subject"] for m in messages] == ["m0", "m1", "m2"]
    assert messages[1].get_payload() == ">From the start\n>>From quoted\nlast\n"
    assert messages[2].get_from() == "ann@example.org Mon Jul 19 19:47:34 1993"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_separator_repaired_after_a_foreign_unterminated_message(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.write_bytes(b"From x@y Mon Jul 19 19:47:34 1993\nSubject: old\n\nno final newline")
    mbox.append(path, mbox.entry(None, WHEN, b"Subject: new\n\nbody\n"))
    assert [m["Subject"] for m in mailbox.mbox(path)] == ["old", "new"]
    assert b"no final newline\n\nFrom MAILER-DAEMON" in path.read_bytes()


def test_repeated_append_after_crash_is_not_written_twice(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    item = mbox.entry(None, WHEN, b"Subject: once\n\nbody\n")
    assert mbox.append(path, item) is True
    assert mbox.append(path, item) is False
    assert len(mailbox.mbox(path)) == 1


def test_failed_append_is_truncated_back(tmp_path: Path) -> None:
    """A real write failure (file size limit, EFBIG) in the middle of an append."""
    path = tmp_path / "mbox"
    mbox.append(path, mbox.entry(None, WHEN, b"Subject: kept\n\nsmall\n"))
    before = path.read_bytes()
    child = textwrap.dedent(
        f"""
        import resource, signal, time
        from pathlib import Path
        from posthorn.delivery import mbox
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = {len(before)} + 4096
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        item = mbox.entry(None, 0.0, b"Subject: big\\n\\n" + b"x" * 100000 + b"\\n")
        try:
            mbox.append(Path({str(path)!r}), item)
        except OSError as exc:
            print("failed", exc.errno)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, env=env(), timeout=60, check=True
    )
    assert result.stdout.split()[0] == b"failed"
    assert path.read_bytes() == before
    assert [m["Subject"] for m in mailbox.mbox(path)] == ["kept"]


def test_an_append_killed_mid_write_is_cut_off_by_the_next(tmp_path: Path) -> None:
    """SIGKILL in the middle of the write: no except clause runs, so the half entry stays
    until the next append to that mbox cuts it off, using the note the dead one left."""
    path = tmp_path / "mbox"
    mbox.append(path, mbox.entry(None, WHEN, b"Subject: kept\n\nsmall\n"))
    before = path.read_bytes()
    child = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from posthorn.delivery import mbox
        real_write = os.write
        def dying_write(fd, data):
            if len(data) < 1000:  # the note, not the entry
                return real_write(fd, data)
            real_write(fd, bytes(data[: len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        mbox.os.write = dying_write
        item = mbox.entry(None, 0.0, b"Subject: half\\n\\n" + b"x" * 50000 + b"\\n")
        mbox.append(Path({str(path)!r}), item)
        """
    )
    appender = subprocess.Popen([sys.executable, "-c", child], env=env())
    assert appender.wait(60) == -signal.SIGKILL
    assert len(path.read_bytes()) > len(before)  # half an entry is there
    assert (tmp_path / ".mbox.posthorn-append").exists()
    # The dead process's dotlock names it: the next append takes it over at once.
    lock = tmp_path / "mbox.lock"
    assert lock.read_text() == f"{appender.pid}:{socket.gethostname()}\n"

    def sleep(seconds: float) -> None:
        raise AssertionError("waited for a dead process's lock")

    assert mbox.append(path, mbox.entry(None, WHEN, b"Subject: next\n\nbody\n"), sleep=sleep)
    assert not lock.exists()
    assert [m["Subject"] for m in mailbox.mbox(path)] == ["kept", "next"]
    assert not (tmp_path / ".mbox.posthorn-append").exists()


def _append_gives_up(path: Path) -> None:
    """An append that waits out its one-second lock timeout on a clock of its own."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(mbox.MailboxBusy):
        mbox.append(
            path, mbox.entry(None, WHEN, b"Subject: a\n\nb\n"),
            lock_timeout=1.0, clock=lambda: now[0], sleep=sleep,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("owner", "why"),
    [
        (lambda: f"{os.getppid()}:{socket.gethostname()}", "a live process of this host"),
        (lambda: f"{2**22 + 7}:elsewhere.example", "a process of another host"),
        (lambda: f"{2**22 + 7}", "a bare pid (liblockfile): no host to check"),
        (lambda: "", "another program's empty lock"),
    ],
)
def test_a_dotlock_not_known_abandoned_is_waited_for(
    tmp_path: Path, owner: Callable[[], str], why: str
) -> None:
    path = tmp_path / "mbox"
    path.touch()
    (tmp_path / "mbox.lock").write_text(owner() + "\n")
    _append_gives_up(path)
    assert (tmp_path / "mbox.lock").exists(), why
    assert path.read_bytes() == b""


def test_a_note_never_cuts_what_is_whole_or_written_by_others(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    note = tmp_path / ".mbox.posthorn-append"
    first = mbox.entry(None, WHEN, b"Subject: one\n\nbody\n")
    mbox.append(path, first)
    # Killed after a whole write, before removing its note: the entry stays, once.
    note.write_text(f"0 {len(first)} {first[:32].hex()}\n")
    assert mbox.append(path, first) is False
    assert len(mailbox.mbox(path)) == 1
    # The file ends inside the noted range, but with bytes another program wrote there.
    start = len(path.read_bytes())
    other = b"\nFrom mutt@example.org Mon Jul 19 12:00:00 1993\nSubject: other\n\nx\n"
    with path.open("ab") as f:
        f.write(other)
    ours = b"\n" + mbox.entry(None, WHEN, b"Subject: never\n\n" + b"y" * 500 + b"\n")
    note.write_text(f"{start} {start + len(ours)} {ours[:32].hex()}\n")
    assert mbox.append(path, mbox.entry(None, WHEN, b"Subject: two\n\nbody\n"))
    assert [m["Subject"] for m in mailbox.mbox(path)] == ["one", "other", "two"]
    # A note that makes no sense is dropped, and nothing is cut.
    note.write_text("garbage\n")
    size = len(path.read_bytes())
    assert mbox.append(path, mbox.entry(None, WHEN, b"Subject: three\n\nbody\n"))
    assert len(path.read_bytes()) > size
    assert not note.exists()


def test_waits_for_a_mutt_dotlock(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    subprocess.run(["mutt_dotlock", str(path)], check=True, timeout=10)
    assert (tmp_path / "mbox.lock").exists()
    waited = []

    def sleep(seconds: float) -> None:
        # The other program is done: mutt's own tool removes its lock.
        waited.append(seconds)
        subprocess.run(["mutt_dotlock", "-u", str(path)], check=True, timeout=10)

    assert mbox.append(path, mbox.entry(None, WHEN, b"Subject: a\n\nb\n"), sleep=sleep)
    assert waited
    assert not (tmp_path / "mbox.lock").exists()
    assert len(mailbox.mbox(path)) == 1


def test_fcntl_lock_of_another_process_makes_it_wait_then_give_up(tmp_path: Path) -> None:
    path = tmp_path / "mbox"
    path.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            f"f = open({str(path)!r}, 'a')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        _append_gives_up(path)
        assert path.read_bytes() == b""
        assert not (tmp_path / "mbox.lock").exists()  # our dotlock was given back
    finally:
        holder.communicate(b"", timeout=10)
    assert mbox.append(path, mbox.entry(None, WHEN, b"Subject: a\n\nb\n"))
    with path.open("a") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nothing left locked


def test_symlinked_mailbox_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / "mbox")
    with pytest.raises(OSError, match=r"symbolic links|Too many levels"):
        mbox.append(tmp_path / "mbox", mbox.entry(None, WHEN, b"Subject: a\n\nb\n"))
    assert target.read_bytes() == b""


_LINES = st.lists(st.sampled_from(["From x", ">From y", ">>From z", "From", "x From y", ""]))


@given(_LINES)
def test_quoting_is_reversible_and_leaves_no_separator(lines: list[str]) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    quoted = mbox.quote(body)
    assert not any(line.startswith(b"From ") for line in quoted.split(b"\n"))
    # mboxrd readers take one '>' off every line that matches ^>+From .
    restored = re.sub(rb"^>(>*From )", rb"\1", quoted, flags=re.MULTILINE)
    assert restored == body
