"""The command line itself: usage errors exit 64 (EX_USAGE) with the usage on stderr, and
`--help` of the operator commands exits 0 with their usage text."""

from __future__ import annotations

import subprocess

import pytest

from support.server import env, posthorn_cmd


def posthorn(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        posthorn_cmd(*words),
        input="",
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("words", "usage", "error"),
    [
        (
            ("send", "--no-such-flag", "bob@localhost"),
            "usage: posthorn send ",
            "posthorn send: error: unrecognized arguments: --no-such-flag",
        ),
        (
            ("read", "seven"),
            "usage: posthorn read ",
            "posthorn read: error: argument N: invalid int value: 'seven'",
        ),
        (
            ("queue", "show"),
            "usage: posthorn queue show ",
            "posthorn queue show: error: the following arguments are required: ID",
        ),
        (
            ("queue",),
            "usage: posthorn queue ",
            "posthorn queue: error: the following arguments are required: ACTION",
        ),
        (
            ("explain",),
            "usage: posthorn explain ",
            "posthorn explain: error: the following arguments are required: ADDRESS",
        ),
        (
            ("queue", "list", "--jsn"),
            "usage: posthorn queue list ",
            "posthorn queue list: error: unrecognized arguments: --jsn",
        ),
        (
            (),
            "usage: posthorn ",
            "posthorn: error: the following arguments are required: COMMAND",
        ),
    ],
)
def test_usage_errors_exit_64(words: tuple[str, ...], usage: str, error: str) -> None:
    result = posthorn(*words)
    assert result.returncode == 64, result.stderr  # EX_USAGE, not argparse's 2
    assert result.stdout == ""
    assert result.stderr.startswith(usage), result.stderr
    assert result.stderr.splitlines()[-1] == error


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("queue", "list"), ("usage: posthorn queue list ", "--json", "mailq")),
        (("queue", "flush"), ("usage: posthorn queue flush ", "[ID|DOMAIN]", "wake")),
        (("aliases", "check"), ("usage: posthorn aliases check ", "FILE", ":include:")),
    ],
)
def test_operator_commands_have_help(words: tuple[str, ...], expected: tuple[str, ...]) -> None:
    result = posthorn(*words, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for text in expected:
        assert text in result.stdout
