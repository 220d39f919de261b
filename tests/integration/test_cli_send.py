"""`posthorn send` end to end: a subprocess submits to a real Posthorn on a free port."""

from __future__ import annotations

import email
import mailbox
import re
import socket
import subprocess
from collections.abc import Callable
from email import policy
from pathlib import Path

import pytest

from support.cli import run
from support.server import Server, env, posthorn_cmd


def _match_lines(output: str, patterns: list[str]) -> list[re.Match[str]]:
    lines = output.splitlines()
    assert len(lines) == len(patterns), output
    found = []
    for line, pattern in zip(lines, patterns, strict=True):
        match = re.fullmatch(pattern, line)
        assert match, f"{line!r} does not match {pattern!r}\n{output}"
        found.append(match)
    return found


def test_verbose_dialogue_has_the_seeds_form(server: Server) -> None:
    # The seed: `mail -v` asks To: and Subject:, reads the body up to a lone '.', then
    # shows "Connecting to ... / Trying ... connected.", client lines after '>>> ' and
    # the server's replies as received, and "Sent".
    result = run(
        server,
        "send", "-v", "--server", f"127.0.0.1:{server.port}", "-r", "rstevens@sun.test",
        stdin="bob@localhost\ntesting\n1, 2, 3.\n.\nnot part of the body\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    port = server.port
    ehlo = [
        r"250-mx\.test Hello mx\.test \[127\.0\.0\.1\], pleased to meet you",
        "250-PIPELINING",
        r"250-SIZE \d+",
        "250-ETRN",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-DSN",
        "250-SMTPUTF8",
        "250-CHUNKING",
        "250 HELP",
    ]
    matches = _match_lines(
        result.stdout,
        [
            "To: bob@localhost",
            "Subject: testing",
            rf"Connecting to 127\.0\.0\.1 port {port} via tcp\.\.\.",
            r"Trying 127\.0\.0\.1\.\.\. connected\.",
            "220 mx.test ESMTP Posthorn",
            ">>> EHLO mx.test",
            *ehlo,
            r">>> MAIL FROM:<rstevens@sun\.test> SIZE=\d+",
            ">>> RCPT TO:<bob@localhost>",
            ">>> DATA",
            r"250 2\.1\.0 Ok",
            r"250 2\.1\.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            ">>> .",
            r"250 2\.0\.0 Ok: queued as (\w+)",
            ">>> QUIT",
            r"221 2\.0\.0 Bye",
            r"Sent \(Ok: queued as (\w+)\)",
        ],
    )
    assert matches[-1].group(1) == matches[-4].group(1)
    (path,) = server.wait_delivered("bob")
    delivered = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert delivered["Subject"] == "testing"
    assert delivered["From"] == "rstevens@sun.test"
    assert delivered.get_content() == "1, 2, 3.\n"


def test_quiet_send_with_arguments_cc_and_bcc(server: Server) -> None:
    result = run(
        server,
        "send", "--server", f"127.0.0.1:{server.port}", "-s", "Grüße",
        "-c", "carol@localhost", "-b", "secret@localhost", "bob@localhost",
        stdin="Hallo Jørn\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    for user in ("bob", "carol", "secret"):
        (path,) = server.wait_delivered(user)
        data = path.read_bytes()
        head = data.split(b"\n\n", 1)[0]
        assert b"Bcc" not in head
        # Only the delivery header of the Bcc recipient's own copy names it.
        assert (b"secret" in head) == (user == "secret")
        assert head.isascii()
        message = email.message_from_bytes(data, policy=policy.default)
        assert message["Subject"] == "Grüße"
        assert message["Cc"] == "carol@localhost"
        assert message.get_content() == "Hallo Jørn\n"
        assert message["From"].addresses[0].domain == "mx.test"  # login@server.hostname


def test_refused_recipient_is_reported_and_the_others_get_it(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server('[local]\naccept_any_local_user = false\nusers = ["bob"]\n')
    result = run(
        server,
        "send", "--server", f"127.0.0.1:{server.port}", "-s", "hi", "bob@localhost",
        "nobody@localhost",
        stdin="body\n", extra_env={"DEAD": str(tmp_path / "dead.letter")},
    )  # fmt: skip
    assert result.returncode == 67  # EX_NOUSER
    assert "<nobody@localhost>: 550 5.1.1" in result.stderr
    server.wait_delivered("bob")
    assert not (tmp_path / "dead.letter").exists()  # it was sent, to bob


def test_all_recipients_refused_keeps_a_dead_letter(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server('[local]\naccept_any_local_user = false\nusers = ["bob"]\n')
    dead = tmp_path / "dead.letter"
    result = run(
        server,
        "send", "--server", f"127.0.0.1:{server.port}", "-s", "lost?", "nobody@localhost",
        stdin="keep me\n", extra_env={"DEAD": str(dead)},
    )  # fmt: skip
    assert result.returncode == 67, result.stderr
    assert "all recipients were refused" in result.stderr
    (kept,) = mailbox.mbox(dead)
    assert kept["Subject"] == "lost?"
    assert kept.get_payload() == "keep me\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_unreachable_server_is_a_temporary_failure(server: Server, tmp_path: Path) -> None:
    dead = tmp_path / "dead.letter"
    port = _closed_port()
    result = run(
        server,
        "send", "-v", "--server", f"127.0.0.1:{port}", "-s", "later", "bob@localhost",
        stdin="body\n", extra_env={"DEAD": str(dead)},
    )  # fmt: skip
    assert result.returncode == 75  # EX_TEMPFAIL
    assert "Trying 127.0.0.1... Connection refused" in result.stdout
    assert "not sent: cannot connect" in result.stderr
    assert [m["Subject"] for m in mailbox.mbox(dead)] == ["later"]


def test_missing_attachment_sends_nothing(server: Server) -> None:
    result = run(
        server,
        "send", "--server", f"127.0.0.1:{server.port}", "-s", "x", "-a", "/no/such/file",
        "bob@localhost",
    )  # fmt: skip
    assert result.returncode == 66  # EX_NOINPUT
    assert "/no/such/file: No such file or directory" in result.stderr


def test_bad_address_is_a_usage_error(server: Server) -> None:
    result = run(
        server, "send", "--server", f"127.0.0.1:{server.port}", "-s", "x", "bob", stdin="b\n"
    )
    assert result.returncode == 65  # EX_DATAERR
    assert "'bob': not an address" in result.stderr


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        posthorn_cmd("send", "--help"), capture_output=True, text=True, env=env(), timeout=60
    )
    assert result.returncode == 0
    for option in ("-s SUBJECT", "-c ADDRESS", "-b ADDRESS", "-a FILE", "--server", "-v"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("read", "--help"), "--save DIR"),
        (("queue", "show", "--help"), "ID"),
        (("queue", "hold", "--help"), "ID"),
        (("queue", "release", "--help"), "ID"),
        (("queue", "delete", "--help"), "--all"),
        (("config", "check", "--help"), "78"),
        (("sendmail", "--help"), "usage: sendmail"),
    ],
)
def test_every_command_has_help(words: tuple[str, ...], expected: str) -> None:
    result = subprocess.run(
        posthorn_cmd(*words), capture_output=True, text=True, env=env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_no_recipient_at_the_prompt_is_a_usage_error(server: Server) -> None:
    result = run(server, "send", "--server", f"127.0.0.1:{server.port}", stdin="\nsubj\nbody\n")
    assert result.returncode == 64
    assert result.stdout == "To: \nSubject: subj\n"
    assert "no recipients" in result.stderr


def test_from_address_and_name_from_config(make_server: Callable[..., Server]) -> None:
    # [submit] from_address / from_name make the From header and the envelope sender;
    # a non-ASCII name goes out as an RFC 2047 encoded word.
    server = make_server(
        '[submit]\nfrom_address = "keld@dkuug.dk"\nfrom_name = "Keld Jørn Simonsen"\n'
    )
    result = run(
        server, "send", "--server", f"127.0.0.1:{server.port}", "-s", "hej", "bob@localhost",
        stdin="body\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (path,) = server.wait_delivered("bob")
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <keld@dkuug.dk>\n")
    head = data.split(b"\n\n", 1)[0]
    assert b"From: Keld =?utf-8?q?J=C3=B8rn?= Simonsen <keld@dkuug.dk>\n" in head
    sender = email.message_from_bytes(data, policy=policy.default)["From"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [
        ("Keld Jørn Simonsen", "keld@dkuug.dk")
    ]
    # -r still wins over the config.
    again = run(
        server, "send", "--server", f"127.0.0.1:{server.port}", "-r", "ann@example.org",
        "-s", "x", "bob@localhost", stdin="b\n",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    paths = server.wait_delivered("bob", 2)
    froms = {email.message_from_bytes(p.read_bytes())["From"] for p in paths}
    assert "ann@example.org" in froms
