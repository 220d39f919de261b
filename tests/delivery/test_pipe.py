"""The pipe agent with real commands: no shell, environment, exit codes, time limit."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from pathlib import Path

from posthorn.address import Address
from posthorn.delivery.pipe import PipeDelivery
from posthorn.envelope import Envelope, Recipient
from posthorn.outcome import Deferred, Delivered, Failed, Outcome
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.routes import Pipe

ME = pwd.getpwuid(os.geteuid()).pw_name  # no switch: the tests' own account
RCPT = RecipientStatus(0, Recipient(Address("list+tag", "mx.test"), orcpt="rfc822;x@mx.test"))
MESSAGE = QueuedMessage(
    "Q1", Envelope(Address("ann", "example.org"), (RCPT.recipient,), arrival=1.0), 10, (RCPT,)
)
CONTENT = b"Subject: hi\r\n\r\nbody\r\n"


def run(command: str, timeout: float = 30.0, content: bytes = CONTENT) -> Outcome:
    agent = PipeDelivery(timeout=timeout)
    outcomes = asyncio.run(agent.deliver(MESSAGE, content, Pipe(command, ME), [RCPT]))
    return outcomes[0]


def test_no_shell_arguments_stdin_and_environment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = (
        f'printf "%s\\n" "$@" "$SENDER" "$RECIPIENT" "$LOCAL" "$EXTENSION" > {out}; cat >> {out}'
    )
    outcome = run(f"/bin/sh -c '{script}' sh 'a;b' '$HOME' `x`")
    assert isinstance(outcome, Delivered)
    lines = out.read_text().splitlines()
    # Metacharacters reach the program as they are: nothing interpreted them.
    assert lines[:7] == [
        "a;b",
        "$HOME",
        "`x`",
        "ann@example.org",
        "list+tag@mx.test",
        "list+tag",
        "tag",
    ]
    assert lines[7:9] == ["Return-Path: <ann@example.org>", "Delivered-To: list+tag@mx.test"]
    assert lines[-1] == "body"  # LF line endings on stdin


def test_exit_codes_map_to_outcomes() -> None:
    temp = run("/bin/sh -c 'echo try later; exit 75'")
    assert isinstance(temp, Deferred)
    assert str(temp.reply) == "451 4.3.0 command exited with status 75: try later"
    nouser = run("/bin/sh -c 'echo no such user >&2; exit 67'")
    assert isinstance(nouser, Failed)
    assert str(nouser.reply) == "554 5.1.1 command exited with status 67: no such user"
    other = run("/bin/false")
    assert isinstance(other, Failed)
    assert other.reply.esc == "5.3.0"


def test_missing_program_fails() -> None:
    outcome = run("/nonexistent/program")
    assert isinstance(outcome, Failed)
    assert "cannot run" in str(outcome.reply)


def test_command_that_ignores_its_input_is_fine() -> None:
    assert isinstance(run("/bin/true", content=CONTENT + b"x" * 1_000_000), Delivered)


def test_time_limit_kills_the_process_group() -> None:
    started = time.monotonic()
    outcome = run("/bin/sh -c 'sleep 30 & sleep 30'", timeout=0.3)
    assert time.monotonic() - started < 10
    assert isinstance(outcome, Deferred)
    assert str(outcome.reply) == "451 4.3.0 command timed out after 0.3s"
