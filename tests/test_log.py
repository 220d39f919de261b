"""The log's one-line format, its level, tracebacks, and the stdlib path before set-up."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator

import pytest

from posthorn import log

LINE = re.compile(
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx\.example posthorn/(\w+)\[(\d+)\]: (.*)$"
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """`log.setup` to a string for one test; the process's logging as it was after."""
    root = logging.getLogger("posthorn")
    saved = (root.handlers[:], root.level, root.propagate, log._handler, log._level)
    out = io.StringIO()
    log.setup("info", "mx.example", out)
    try:
        yield out
    finally:
        root.handlers[:], root.level, root.propagate, log._handler, log._level = saved


def test_a_line_names_component_and_process(stream: io.StringIO) -> None:
    log.get("cleanup").info("%s: from=<%s>, size=%d", "ABC123", "a@b.example", 1333)
    log.get("smtpd").info("connect from %s", "localhost[127.0.0.1]")
    lines = stream.getvalue().splitlines()
    assert [LINE.match(line).groups() for line in lines] == [  # type: ignore[union-attr]
        ("cleanup", str(os.getpid()), "ABC123: from=<a@b.example>, size=1333"),
        ("smtpd", str(os.getpid()), "connect from localhost[127.0.0.1]"),
    ]


def test_a_message_without_arguments_is_not_formatted(stream: io.StringIO) -> None:
    log.get("queue").warning("100% full")
    assert stream.getvalue().endswith(": 100% full\n")


def test_lines_below_the_level_are_not_written(stream: io.StringIO) -> None:
    logger = log.get("smtp")
    logger.debug("not this")
    logger.info("this")
    logger.error("and this")
    assert [LINE.match(x).group(3) for x in stream.getvalue().splitlines()] == [  # type: ignore[union-attr]
        "this",
        "and this",
    ]


def test_an_exception_line_carries_its_traceback(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        log.get("queue").exception("%s: delivery crashed", "QID1")
    first, *rest = stream.getvalue().splitlines()
    assert LINE.match(first).groups()[::2] == ("queue", "QID1: delivery crashed")  # type: ignore[union-attr]
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: disk on fire"


def test_before_setup_lines_go_through_the_stdlib(caplog: pytest.LogCaptureFixture) -> None:
    """Tests and tools that never call `setup` still see lines as records."""
    assert log._handler is None
    caplog.set_level(logging.INFO, "posthorn")
    log.get("smtpd").info("lost connection from %s", "x[192.0.2.1]")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("posthorn.smtpd", "lost connection from x[192.0.2.1]")
    ]
