"""Helpers for tests that look at what routing and local delivery produced.

A directory every account can write (file and pipe targets run as `nobody` when the
tests run as root), the owner those targets run as, and parsing a delivered message.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import shutil
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path


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
