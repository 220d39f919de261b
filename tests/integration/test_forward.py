"""Forward files end to end: data-dir forward files and ~/.forward of system users."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.mail import expected_owner, parse, world_writable_dir
from support.server import Server, wait_for, wait_log

MESSAGE = b"Subject: fwd\r\n\r\nforward me\r\n"


@pytest.fixture
def shared() -> Iterator[Path]:
    with world_writable_dir() as path:
        yield path


def forward_file(server: Server, user: str, text: str, mode: int = 0o600) -> Path:
    path = server.data_dir / "mail" / user / "forward"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_forward_chain_with_local_copy(make_server: Callable[..., Server]) -> None:
    server = make_server(
        '[local]\ndomains = ["mx.test"]\nusers = ["alice", "bob", "carol"]\n'
        "accept_any_local_user = false\n"
    )
    forward_file(server, "alice", "# keep a copy and send one to bob\n\\alice, bob\n")
    forward_file(server, "bob", "carol@mx.test\n")
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["alice@mx.test"], MESSAGE)
    (kept,) = server.wait_delivered("alice")
    (forwarded,) = server.wait_delivered("carol")
    assert parse(kept).get_all("Delivered-To") == ["alice@mx.test"]
    # Each forwarding step left its Delivered-To; the newest is on top.
    assert parse(forwarded).get_all("Delivered-To") == [
        "carol@mx.test",
        "bob@mx.test",
        "alice@mx.test",
    ]
    assert parse(forwarded)["Return-Path"] == "<ann@example.org>"
    assert server.delivered("bob") == []  # bob forwards without keeping a copy


def test_forward_loop_between_users_is_refused(make_server: Callable[..., Server]) -> None:
    server = make_server('[local]\ndomains = ["mx.test"]\n')
    forward_file(server, "ping", "pong\n")
    forward_file(server, "pong", "ping\n")
    forward_file(server, "echo", "echo, pong\n")  # lists itself: keeps a copy
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["ping@mx.test", "echo@mx.test"], MESSAGE)
    server.wait_delivered("echo")
    wait_log(server, re.escape("status=bounced (554 5.4.6 <ping@mx.test>: alias or forward loop)"))
    log = server.log()
    assert "to=<ping@mx.test>" in log
    assert server.delivered("ping") == []
    assert server.delivered("pong") == []


def test_unsafe_forward_file_is_ignored(make_server: Callable[..., Server]) -> None:
    server = make_server('[local]\ndomains = ["mx.test"]\n')
    forward_file(server, "dan", "eve\n", mode=0o666)
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["dan@mx.test"], MESSAGE)
    server.wait_delivered("dan")
    assert "forward: ignored: writable by group or others" in server.log()
    assert server.delivered("eve") == []


def test_forward_files_can_be_switched_off(make_server: Callable[..., Server]) -> None:
    server = make_server('[local]\ndomains = ["mx.test"]\n[aliases]\nforward_files = false\n')
    forward_file(server, "fay", "gus\n")
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["fay@mx.test"], MESSAGE)
    server.wait_delivered("fay")
    assert server.delivered("gus") == []


def test_system_user_dot_forward_with_pipe_runs_as_that_user(
    tmp_path: Path, shared: Path, make_server: Callable[..., Server]
) -> None:
    home = tmp_path / "home" / "sam"
    home.mkdir(parents=True)
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    passwd = tmp_path / "passwd"
    passwd.write_text(f"sam:x:{uid}:{uid}:Samuel Vimes,,,:{home}:/bin/sh\n")
    (home / ".forward").write_text(f'\\sam, "|/usr/bin/tee {shared}/sam.out"\n')
    server = make_server(
        f"""
        [local]
        domains = ["mx.test"]
        accept_any_local_user = false
        system_users = true
        passwd = "{passwd}"
        [aliases]
        allow_pipes = true
        """
    )
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["sam@mx.test"], MESSAGE)
    server.wait_delivered("sam")
    out = shared / "sam.out"
    wait_for(lambda: out.exists() and b"forward me" in out.read_bytes(), what="pipe output")
    assert out.stat().st_uid == expected_owner()
    assert b"Delivered-To: sam@mx.test\n" in out.read_bytes()
    with server.smtp() as client:
        client.ehlo()
        assert client.verify("sam") == (250, b"2.1.5 Samuel Vimes <sam@mx.test>")
        code, text = client.expn("sam")
        # EXPN follows the forward file (as sendmail shows it), VRFY does not.
        assert code == 250
        assert text.splitlines() == [
            b"2.1.5 Samuel Vimes <sam@mx.test>",
            f'2.1.5 <"|/usr/bin/tee {shared}/sam.out"@mx.test>'.encode(),
        ]
