"""mbox as the mailbox format: delivered by the server, read by Python's mailbox and mutt."""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Callable
from pathlib import Path

from support import mutt
from support.server import Server, wait_for


def body(i: int) -> bytes:
    return (
        f"Subject: note {i}\r\nFrom: ann@example.org\r\n\r\n"
        "From the desk of Ann\r\n>From a quote\r\nbye\r\n"
    ).encode()


def test_global_mbox_format_read_by_mailbox_and_mutt(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server('[local]\nmailbox_format = "mbox"\n')
    with server.smtp() as client:
        for i in range(3):
            client.sendmail("ann@example.org", ["bob@localhost"], body(i))
        client.sendmail("", ["bob@localhost"], body(3))  # a bounce: MAILER-DAEMON
    path = server.data_dir / "mail" / "bob" / "mbox"
    wait_for(lambda: path.exists() and len(mailbox.mbox(path)) == 4, what="4 messages")
    # The runner delivers messages concurrently: the order in the file may vary.
    messages = {m["Subject"]: m for m in mailbox.mbox(path)}
    assert sorted(messages) == [f"note {i}" for i in range(4)]
    assert messages["note 0"].get_from().startswith("ann@example.org ")
    assert messages["note 3"].get_from().startswith("MAILER-DAEMON ")
    first = messages["note 0"].as_bytes()
    assert first.startswith(b"Return-Path: <ann@example.org>\nDelivered-To: bob@localhost\n")
    assert b"\n>From the desk of Ann\n>>From a quote\nbye\n" in first
    assert server.delivered("bob") == []  # no Maildir

    out = tmp_path / "mutt-copy"
    screen = mutt.copy_all(path, out, expected=4)
    copied = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(out.glob("*/*"))
        if p.is_file()
    ]
    assert sorted(str(m["Subject"]) for m in copied) == [f"note {i}" for i in range(4)], screen
    assert all("bye" in m.get_content() for m in copied)  # type: ignore[attr-defined]


def test_per_user_format_overrides_the_default(make_server: Callable[..., Server]) -> None:
    server = make_server(
        '[local]\nmailbox_formats = { carol = "mbox" }\nmbox = "{data_dir}/spool/{user}"\n'
    )
    with server.smtp() as client:
        client.sendmail("ann@example.org", ["carol@localhost", "dave@localhost"], body(1))
    server.wait_delivered("dave")
    spool = server.data_dir / "spool" / "carol"
    wait_for(lambda: spool.exists() and len(mailbox.mbox(spool)) == 1, what="carol's mbox")
    assert server.delivered("carol") == []
