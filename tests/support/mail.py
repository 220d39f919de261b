"""Helpers for tests that look at what routing and local delivery produced.

A directory every account can write (file and pipe targets run as `nobody` when the
tests run as root), reading the queue database, and waiting for log lines.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

from support.server import Server, wait_for


@contextlib.contextmanager
def world_writable_dir() -> Iterator[Path]:
    """A sticky, world-writable directory under /tmp, removed afterwards (pytest's
    tmp_path is private to the user running the tests)."""
    path = Path(tempfile.mkdtemp(prefix="posthorn-test-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def expected_owner() -> int:
    """The uid that alias file and pipe targets run as: nobody when root, else us."""
    return 65534 if os.geteuid() == 0 else os.geteuid()


def parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def wait_log(server: Server, text: str, timeout: float = 15.0) -> str:
    wait_for(lambda: text in server.log(), timeout, f"log line {text!r}\n{server.log()}")
    return server.log()


def queue_rows(server: Server) -> list[tuple[str, str, bytes, str, str]]:
    """(qid, envelope JSON, content, recipient, state) of every queued recipient."""
    db = sqlite3.connect(f"file:{server.data_dir / 'queue' / 'queue.db'}?mode=ro", uri=True)
    try:
        return [
            (qid, env, bytes(data), f"{local}@{domain}", state)
            for qid, env, data, local, domain, state in db.execute(
                "SELECT m.qid, m.envelope, c.data, r.local, r.domain, r.state FROM messages m"
                " JOIN contents c ON c.qid = m.qid JOIN recipients r ON r.qid = m.qid"
                " ORDER BY m.qid, r.idx"
            )
        ]
    finally:
        db.close()
