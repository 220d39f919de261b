"""The Postfix-style log that operators grep: one line per event, keyed by queue id,
read from what the real server wrote to its stderr (`Server.log()`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from support.raw import RawClient
from support.server import Server, wait_log

pytestmark = pytest.mark.timeout(60)

PREFIX = r"^\w{3} [ \d]\d \d\d:\d\d:\d\d mx\.test posthorn/(\w+)\[\d+\]: "
MESSAGE = b"Subject: logged\r\nFrom: alice@example.org\r\n\r\nline one\r\nline two\r\n"


def _queue_id(reply: bytes) -> str:
    match = re.fullmatch(rb"2\.0\.0 Ok: queued as ([0-9A-Za-z]+)", reply)
    assert match is not None, reply
    return match.group(1).decode()


def _queued_size(maildir_file: bytes) -> int:
    """The size of the message as queued: the Maildir copy without the two delivery
    headers added at final delivery, with LF back to CRLF."""
    head, _, rest = maildir_file.partition(b"\nDelivered-To: ")
    assert head.startswith(b"Return-Path: ")
    rest = rest.partition(b"\n")[2]
    return len(rest) + rest.count(b"\n")


def test_session_and_queued_message_are_logged(server: Server) -> None:
    """connect from, QID: from=<...>, size=N, nrcpt=N (queue active), disconnect from with
    Postfix's per-command counts, in that order, each on one line with the prefix."""
    with server.smtp() as client:
        client.ehlo()
        client.mail("alice@example.org")
        client.rcpt("bob@localhost")
        client.rcpt("carol@localhost")
        code, reply = client.data(MESSAGE)
    assert code == 250
    qid = _queue_id(reply)
    (path,) = server.wait_delivered("bob")
    size = _queued_size(path.read_bytes())
    (queued,) = wait_log(server, rf": {qid}: from=")
    assert re.search(
        PREFIX + rf"{qid}: from=<alice@example\.org>, size={size}, nrcpt=2 \(queue active\)$",
        queued,
    ), queued
    session = "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 accepted=1 quit=1"
    (disconnect,) = wait_log(server, re.escape(session) + "$")
    assert re.search(PREFIX.replace(r"(\w+)", "smtpd") + re.escape(session), disconnect)
    lines = server.log().splitlines()
    at_queue, at_disconnect = lines.index(queued), lines.index(disconnect)
    connect = re.compile(
        PREFIX.replace(r"(\w+)", "smtpd") + r"connect from localhost\[127\.0\.0\.1\] \(smtp\)$"
    )
    assert any(connect.search(line) for line in lines[:at_queue]), lines
    assert at_queue < at_disconnect
    for user in ("bob", "carol"):
        wait_log(server, rf": {qid}: to=<{user}@localhost>, relay=local, .*status=sent")


def test_session_without_commands_logs_a_bare_disconnect(server: Server) -> None:
    """A client that connects and leaves: connect and disconnect lines, no counts and
    no trailing blank."""
    with RawClient(server.host, server.port) as client:
        assert client.reply().startswith("220 ")
    lines = wait_log(server, r"disconnect from localhost\[127\.0\.0\.1\]$", count=1)
    assert re.search(PREFIX + r"disconnect from localhost\[127\.0\.0\.1\]$", lines[-1])


def test_held_message_is_logged_as_queue_hold(make_server: Callable[..., Server]) -> None:
    """With `serve --hold`, the line says (queue hold), and its size is the size the
    queue reports for the message."""
    server = make_server("", "--hold")
    with server.smtp() as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt("bob@localhost")
        code, reply = client.data(MESSAGE)
    assert code == 250
    qid = _queue_id(reply)
    (line,) = wait_log(server, rf": {qid}: from=")
    match = re.search(PREFIX + rf"{qid}: from=<>, size=(\d+), nrcpt=1 \(queue hold\)$", line)
    assert match is not None, line
    result = server.cli("queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    (listed,) = json.loads(result.stdout)
    assert listed["id"] == qid
    assert listed["hold"] is True
    assert int(match.group(2)) == listed["size"]
    assert not server.delivered("bob")
