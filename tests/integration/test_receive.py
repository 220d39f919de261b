"""Receiving mail end to end: real clients, the real server, real Maildirs."""

from __future__ import annotations

import email
import email.utils
import json
import shutil
import smtplib
import subprocess
import threading

import pytest

from support.raw import RawClient
from support.server import Server

pytestmark = pytest.mark.timeout(60)

BODY_8BIT = "Grüße aus Köln: ça va très bien\r\n".encode()


def queue(server: Server) -> list[dict[str, object]]:
    result = server.cli("queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def greeted(server: Server) -> RawClient:
    client = RawClient(server.host, server.port)
    assert client.reply().startswith("220 mx.test ESMTP Posthorn")
    return client


def test_maildir_file_is_byte_exact(server: Server) -> None:
    """Received on top, dots unstuffed, 8-bit body unchanged, CRLF -> LF."""
    message = (
        b"From: Alice <alice@example.org>\r\nTo: bob@localhost\r\nSubject: exact\r\n"
        b"Message-ID: <m1@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n"
        b".a line that starts with a dot\r\n..two dots\r\n" + BODY_8BIT + b"last line\r\n"
    )
    with server.smtp() as client:
        client.ehlo()
        client.sendmail("alice@example.org", ["bob@localhost"], message, ["BODY=8BITMIME"])
    (path,) = server.wait_delivered("bob")
    data = path.read_bytes()
    head, _, rest = data.partition(b"Received: from client.test (localhost [127.0.0.1])\n")
    assert head == b"Return-Path: <alice@example.org>\nDelivered-To: bob@localhost\n"
    trace, _, original = rest.partition(b"From: Alice")
    assert b"\tby mx.test (Posthorn) with ESMTP id " in trace
    assert b"\tfor <bob@localhost>; " in trace
    assert b"From: Alice" + original == message.replace(b"\r\n", b"\n")


def test_message_id_and_date_added_when_missing(server: Server) -> None:
    with server.smtp() as client:
        client.sendmail("a@example.org", ["bob@mx.test"], b"Subject: bare\r\n\r\nhi\r\n")
    (path,) = server.wait_delivered("bob")
    data = path.read_bytes()
    assert b"\nMessage-ID: <" in data
    assert b"\nDate: " in data


def test_swaks_delivers(server: Server) -> None:
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by scripts/install-test-deps"
    result = subprocess.run(
        [swaks, "--server", f"{server.host}:{server.port}", "--from", "x@example.org",
         "--to", "carol@localhost", "--header", "Subject: from swaks", "--pipeline"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"250 2.0.0 Ok: queued as" in result.stdout
    (path,) = server.wait_delivered("carol")
    assert b"Subject: from swaks\n" in path.read_bytes()


def test_pipelined_session(server: Server) -> None:
    """RFC 2920: a whole transaction in one write; replies come back in order."""
    with greeted(server) as client:
        client.send(
            b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<p1@localhost>\r\n"
            b"RCPT TO:<not an address>\r\nRCPT TO:<p2@localhost>\r\nDATA\r\n"
        )
        ehlo, mail, r1, r2, r3, data = client.replies(6)
        assert "PIPELINING" in ehlo
        assert mail == "250 2.1.0 Ok"
        assert (r1, r3) == ("250 2.1.5 Ok", "250 2.1.5 Ok")
        assert r2.startswith("501 5.1.3")
        assert data.startswith("354")
        client.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        queued, bye = client.replies(2)
        assert queued.startswith("250 2.0.0 Ok: queued as ")
        assert bye == "221 2.0.0 Bye"
    server.wait_delivered("p1")
    server.wait_delivered("p2")


def test_bdat_session(server: Server) -> None:
    part1 = b"Subject: chunked\r\n\r\n"
    part2 = b".not stuffed\r\nend\r\n"
    with greeted(server) as client:
        client.send(
            b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<dave@localhost>\r\n"
        )
        assert client.replies(3)[1:] == ["250 2.1.0 Ok", "250 2.1.5 Ok"]
        client.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert client.reply() == f"250 2.0.0 {len(part1)} octets received"
        client.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        assert client.reply().startswith("250 2.0.0 Ok: queued as ")
    (path,) = server.wait_delivered("dave")
    assert path.read_bytes().endswith(b"Subject: chunked\n\n.not stuffed\nend\n")


def test_size_limits(make_server: object) -> None:
    server = make_server("[smtp]\nmax_message_size = 2000\n")  # type: ignore[operator]
    with greeted(server) as client:
        assert "SIZE 2000" in client.command(b"EHLO client.test")
        # RFC 1870: a declared size that is too big is refused at MAIL time.
        assert client.command(b"MAIL FROM:<a@example.org> SIZE=5000").startswith("552 5.3.4")
        assert client.command(b"MAIL FROM:<a@example.org> SIZE=100") == "250 2.1.0 Ok"
        assert client.command(b"RCPT TO:<erin@localhost>") == "250 2.1.5 Ok"
        assert client.command(b"DATA").startswith("354")
        # The declared size lied: the data is read to the end, then refused.
        client.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 50 + b".\r\n")
        assert client.reply().startswith("552 5.3.4")
        assert client.command(b"NOOP") == "250 2.0.0 Ok"
    assert queue(server) == []
    assert server.delivered("erin") == []


def test_disconnect_in_data_queues_nothing(server: Server) -> None:
    with greeted(server) as client:
        client.send(
            b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<frank@localhost>\r\nDATA\r\n"
        )
        assert client.replies(4)[-1].startswith("354")
        client.send(b"Subject: cut off\r\n\r\nhalf a mess")
    with server.smtp() as other:  # the server goes on serving others
        assert other.noop()[0] == 250
    assert queue(server) == []
    assert server.delivered("frank") == []


def test_recipient_limit(make_server: object) -> None:
    server = make_server("[smtp]\nmax_recipients = 3\n")  # type: ignore[operator]
    with greeted(server) as client:
        client.command(b"EHLO c")
        client.command(b"MAIL FROM:<a@example.org>")
        codes = [client.command(b"RCPT TO:<u%d@localhost>" % i)[:9] for i in range(5)]
        assert codes == ["250 2.1.5"] * 3 + ["452 4.5.3"] * 2


def test_hop_count_loop_is_refused(server: Server) -> None:
    hops = b"".join(
        b"Received: from hop%d.test by x.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
        for i in range(101)
    )
    with server.smtp() as client, pytest.raises(smtplib.SMTPDataError) as info:
        client.sendmail("a@example.org", ["gina@localhost"], hops + b"Subject: loop\r\n\r\nx\r\n")
    assert info.value.smtp_code == 554
    assert b"5.4.6" in info.value.smtp_error
    assert queue(server) == []


def test_unknown_local_user_when_users_are_listed(make_server: object) -> None:
    server = make_server('[local]\nusers = ["rstevens"]\naccept_any_local_user = false\n')  # type: ignore[operator]
    with greeted(server) as client:
        client.command(b"HELO bsdi.tuc.noao.edu")
        client.command(b"MAIL FROM:<a@example.org>")
        assert client.command(b"RCPT TO:<nosuchname@localhost>").startswith("550 5.1.1")
        assert client.command(b"RCPT TO:<rstevens@localhost>") == "250 2.1.5 Ok"
        assert client.command(b"RCPT TO:<postmaster@localhost>") == "250 2.1.5 Ok"
        assert client.command(b"RCPT TO:<Postmaster>") == "250 2.1.5 Ok"


def test_postmaster_without_domain_goes_to_postmaster(server: Server) -> None:
    with greeted(server) as client:
        client.command(b"EHLO c")
        client.command(b"MAIL FROM:<>")
        assert client.command(b"RCPT TO:<Postmaster>") == "250 2.1.5 Ok"
        client.command(b"DATA")
        client.send(b"Subject: to the postmaster\r\n\r\nhi\r\n.\r\n")
        assert client.reply().startswith("250 2.0.0")
    (path,) = server.wait_delivered("postmaster")
    assert path.read_bytes().startswith(b"Return-Path: <>\nDelivered-To: postmaster@localhost\n")


def test_idle_timeout_closes_with_421(make_server: object) -> None:
    server = make_server("[smtp]\nidle_timeout = 0.5\n")  # type: ignore[operator]
    with greeted(server) as client:
        assert client.reply().startswith("421 4.4.2")
        assert client.closed()


def test_connection_limit(make_server: object) -> None:
    server = make_server('[server]\nhostname = "mx.test"\nmax_connections = 2\n')  # type: ignore[operator]
    first, second = greeted(server), greeted(server)
    try:
        with RawClient(server.host, server.port) as third:
            assert third.reply().startswith("421 4.7.0")
        assert first.command(b"NOOP") == "250 2.0.0 Ok"
    finally:
        first.close()
        second.close()


def test_many_concurrent_sessions(server: Server) -> None:
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            with server.smtp() as client:
                for j in range(3):
                    client.sendmail(
                        "a@example.org",
                        ["hank@localhost"],
                        b"Subject: %d-%d\r\n\r\nx\r\n" % (i, j),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(server.wait_delivered("hank", 60)) == 60


def test_relayed_mail_gets_no_made_up_message_id_or_date(make_server: object) -> None:
    """RFC 5321 section 6.4: only mail that starts here gets a Message-ID and Date added;
    a message from an outside client (not trusted, not authenticated) is left alone."""
    server = make_server("[relay]\ntrusted_networks = []\n")  # type: ignore[operator]
    with server.smtp() as client:
        client.sendmail("a@example.org", ["bob@mx.test"], b"Subject: from outside\r\n\r\nhi\r\n")
    (path,) = server.wait_delivered("bob")
    data = path.read_bytes()
    assert b"\nMessage-ID:" not in data
    assert b"\nDate:" not in data
    assert data.endswith(b"Subject: from outside\n\nhi\n")


def test_always_add_missing_headers_adds_them_for_any_client(make_server: object) -> None:
    """`[smtp] always_add_missing_headers`: the site asks for them on all mail, as with
    Postfix's setting of the same name."""
    server = make_server(  # type: ignore[operator]
        "[relay]\ntrusted_networks = []\n[smtp]\nalways_add_missing_headers = true\n"
    )
    with server.smtp() as client:
        client.sendmail("a@example.org", ["bob@mx.test"], b"Subject: from outside\r\n\r\nhi\r\n")
    (path,) = server.wait_delivered("bob")
    message = email.message_from_bytes(path.read_bytes())
    assert message["Message-ID"].endswith("@mx.test>")
    assert email.utils.parsedate_to_datetime(message["Date"]) is not None
    # Present ones are kept as they are.
    with server.smtp() as client:
        client.sendmail(
            "a@example.org",
            ["carol@mx.test"],
            b"Message-ID: <own@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n",
        )
    (path,) = server.wait_delivered("carol")
    message = email.message_from_bytes(path.read_bytes())
    assert message.get_all("Message-ID") == ["<own@example.org>"]
    assert message.get_all("Date") == ["Mon, 1 Jan 2024 00:00:00 +0000"]
