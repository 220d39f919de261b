"""Aliases end to end: smtplib -> Posthorn (expansion at intake) -> Maildirs, files, pipes."""

from __future__ import annotations

import json
import mailbox
import re
import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.mail import expected_owner, parse, world_writable_dir
from support.queuedb import queue_rows
from support.server import Server, free_port, wait_for, wait_log

MESSAGE = b"Subject: %s\r\n\r\nhello\r\nFrom the body\r\n"


@pytest.fixture
def shared() -> Iterator[Path]:
    with world_writable_dir() as path:
        yield path


@pytest.fixture
def mx_config(tmp_path: Path, shared: Path) -> str:
    include = tmp_path / "everyone.list"
    include.write_text("# members\nalice\ndave, bob@mx.test\n")
    aliases = tmp_path / "aliases"
    aliases.write_text(
        f"""# lists
staff: alice, bob,
    carol
owner-staff: alice
everyone: :include:{include}
selfish: selfish, alice
loop-a: loop-b
loop-b: loop-a
outside: alice, friend@remote.test
owner-outside: postmaster
archive: {shared}/archive.mbox
run: "|/usr/bin/tee -a {shared}/pipe.out"
"""
    )
    return f"""
        [local]
        domains = ["mx.test", "localhost"]
        users = ["alice", "bob", "carol", "dave"]
        accept_any_local_user = false
        [aliases]
        file = "{aliases}"
        allow_files = true
        allow_pipes = true
        """


@pytest.fixture
def mx(mx_config: str, make_server: Callable[..., Server]) -> Server:
    # remote.test goes to a port where nothing listens: remote copies stay deferred.
    return make_server(mx_config + f'[routes]\n"remote.test" = "smtp:[127.0.0.1]:{free_port()}"\n')


def send(server: Server, to: list[str], subject: str, sender: str = "ann@example.org") -> None:
    with server.smtp() as client:
        client.sendmail(sender, to, MESSAGE % subject.encode())


def test_list_fans_out_with_owner_sender_and_delivered_to(mx: Server) -> None:
    send(mx, ["staff@mx.test"], "staff")
    for user in ("alice", "bob", "carol"):
        (path,) = mx.wait_delivered(user)
        msg = parse(path)
        # owner-staff exists, so the list's deliveries carry it as the envelope sender.
        assert msg["Return-Path"] == "<owner-staff@mx.test>"
        assert msg.get_all("Delivered-To") == [f"{user}@mx.test", "staff@mx.test"]
        assert msg["Subject"] == "staff"


def test_include_file_members(mx: Server) -> None:
    send(mx, ["everyone@mx.test"], "all")
    for user in ("alice", "dave", "bob"):
        (path,) = mx.wait_delivered(user)
        assert parse(path)["Return-Path"] == "<ann@example.org>"  # no owner-everyone


def test_alias_listing_itself_delivers_to_its_mailbox(mx: Server) -> None:
    send(mx, ["selfish@mx.test"], "me too")
    (own,) = mx.wait_delivered("selfish")
    (other,) = mx.wait_delivered("alice")
    assert parse(own).get_all("Delivered-To") == ["selfish@mx.test"]
    assert parse(other).get_all("Delivered-To") == ["alice@mx.test", "selfish@mx.test"]


def test_alias_loop_is_refused_at_end_of_data(mx: Server) -> None:
    with mx.smtp() as client, pytest.raises(smtplib.SMTPDataError) as err:
        client.sendmail("ann@example.org", ["loop-a@mx.test"], MESSAGE % b"loop")
    assert err.value.smtp_code == 554
    assert err.value.smtp_error.startswith(b"5.4.6")


def test_duplicates_are_delivered_once(mx: Server) -> None:
    send(mx, ["alice@mx.test", "staff@mx.test", "everyone@mx.test"], "dup")
    mx.wait_delivered("carol")
    mx.wait_delivered("dave")
    wait_for(lambda: not queue_rows(mx), what="queue to empty")
    assert len(mx.delivered("alice")) == 1
    assert parse(mx.delivered("alice")[0]).get_all("Delivered-To") == ["alice@mx.test"]


def test_remote_member_is_queued_with_owner_sender_and_delivered_to(mx: Server) -> None:
    send(mx, ["outside@mx.test"], "out")
    mx.wait_delivered("alice")
    rows = wait_for(lambda: [r for r in queue_rows(mx) if r[3] == "friend@remote.test"])
    assert isinstance(rows, list)
    ((_, envelope, content, _, state),) = rows
    assert json.loads(envelope)["sender"] == ["owner-outside", "mx.test"]
    assert content.startswith(b"Delivered-To: outside@mx.test\r\nReceived: ")
    assert state == "pending"


def test_remote_member_is_relayed_with_owner_sender(
    mx_config: str, make_server: Callable[..., Server]
) -> None:
    remote = make_server('[local]\ndomains = ["remote.test"]\n', name="remote")
    mx = make_server(
        mx_config + f'[routes]\n"remote.test" = "smtp:[127.0.0.1]:{remote.port}"\n', name="mx"
    )
    send(mx, ["outside@mx.test"], "out")
    (path,) = remote.wait_delivered("friend")
    msg = parse(path)
    assert msg["Return-Path"] == "<owner-outside@mx.test>"
    assert msg.get_all("Delivered-To") == ["friend@remote.test", "outside@mx.test"]


def test_changes_are_picked_up_without_restart(mx: Server, tmp_path: Path) -> None:
    with mx.smtp() as client:
        client.ehlo()
        client.mail("ann@example.org")
        assert client.rcpt("newlist@mx.test")[0] == 550
    aliases = tmp_path / "aliases"
    aliases.write_text(aliases.read_text() + "newlist: dave, carol\n")
    send(mx, ["newlist@mx.test"], "new")
    mx.wait_delivered("dave")
    mx.wait_delivered("carol")


def test_file_target_appends_to_mbox_as_unprivileged_user(mx: Server, shared: Path) -> None:
    send(mx, ["archive@mx.test"], "first")
    send(mx, ["archive@mx.test"], "second")
    box = shared / "archive.mbox"
    wait_for(lambda: box.exists() and box.read_bytes().count(b"\nFrom ") == 1, what="2 in mbox")
    wait_log(mx, re.escape("status=sent (250 2.0.0 delivered to file"))
    assert box.stat().st_uid == expected_owner()
    messages = {m["Subject"]: m for m in mailbox.mbox(box)}  # delivered concurrently
    assert sorted(messages) == ["first", "second"]
    assert messages["first"].get_from().startswith("ann@example.org ")
    assert b"\n>From the body\n" in messages["first"].as_bytes()


def test_pipe_target_runs_command_without_shell_as_unprivileged_user(
    mx: Server, shared: Path
) -> None:
    send(mx, ["run@mx.test"], "piped")
    out = shared / "pipe.out"
    wait_for(lambda: out.exists() and b"hello" in out.read_bytes(), what="pipe output")
    data = out.read_bytes()
    assert data.startswith(b"Return-Path: <ann@example.org>\nDelivered-To: run@mx.test\n")
    assert b"Subject: piped\n" in data
    assert out.stat().st_uid == expected_owner()
    wait_log(mx, re.escape("status=sent (250 2.0.0 delivered to command)"))


def test_pipes_refused_unless_config_allows(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text('run: "|/bin/true"\nmixed: "|/bin/true", alice\n')
    server = make_server(f'[aliases]\nfile = "{aliases}"\n', name="nopipes")
    with server.smtp() as client, pytest.raises(smtplib.SMTPDataError) as err:
        client.sendmail("ann@example.org", ["run@localhost"], MESSAGE % b"x")
    assert (err.value.smtp_code, err.value.smtp_error[:5]) == (550, b"5.7.1")
    send(server, ["mixed@localhost"], "mixed")
    server.wait_delivered("alice")
    wait_log(server, re.escape("status=bounced (550 5.7.1 pipe delivery is disabled"))


def test_delivered_to_loop_is_bounced_not_delivered(mx: Server) -> None:
    with mx.smtp() as client:
        client.sendmail(
            "ann@example.org",
            ["bob@mx.test"],
            b"Delivered-To: bob@mx.test\r\nSubject: again\r\n\r\nround and round\r\n",
        )
    wait_log(mx, re.escape("status=bounced (554 5.4.6 mail forwarding loop for <bob@mx.test>)"))
    assert mx.delivered("bob") == []


def test_forwarded_copy_coming_back_is_refused(mx: Server) -> None:
    # The copy that `outside` forwarded to a remote host carries Delivered-To:
    # outside@mx.test; when it comes back for the same list it must not go round again.
    with mx.smtp() as client, pytest.raises(smtplib.SMTPDataError) as err:
        client.sendmail(
            "ann@example.org",
            ["outside@mx.test"],
            b"Delivered-To: outside@mx.test\r\nSubject: back\r\n\r\nagain\r\n",
        )
    assert err.value.smtp_code == 554
    assert b"5.4.6" in err.value.smtp_error
