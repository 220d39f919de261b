"""`posthorn queue bounce ID` against a running server with deferred mail: the pending
recipients fail now, the sender gets an RFC 3464 DSN (delivered here, read back with the
email package), the queue empties; never a DSN to `<>`; a delivery in progress is waited
for or refused, never raced.

Deferred mail: `deferred.test` answers SERVFAIL on the loopback DNS server, so the
runner defers it and retries in 30 minutes. A delivery in progress: `slow.test` is
routed to a loopback socket that completes the TCP handshake but never greets, so the
runner holds its lease until the test closes that socket.
"""

from __future__ import annotations

import email
import email.policy
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message

import pytest

from support.cli import queue_list, run
from support.dns import DnsServer
from support.server import Server, env, posthorn_cmd, wait_for

# The loopback DNS server (tests/integration/conftest.py) fails for this domain.
ZONE = ""
SERVFAIL = ("deferred.test",)


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A listener that never accepts: connections complete, no greeting ever comes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture
def mta(make_server: Callable[..., Server], dns: DnsServer, silent: socket.socket) -> Server:
    port = silent.getsockname()[1]
    return make_server(
        f'[dns]\nnameservers = ["{dns.address}"]\n'
        "[smtp_client]\ngreeting_timeout = 120.0\n"
        f'[routes]\n"slow.test" = "smtp:[127.0.0.1]:{port}"\n'
    )


def _send(server: Server, sender: str, recipients: list[str], subject: str) -> None:
    body = f"From: Alice <alice@localhost>\r\nSubject: {subject}\r\n\r\nbody text\r\n"
    with server.smtp() as client:
        client.sendmail(sender, recipients, body.encode())


def _deferred(server: Server, sender: str, recipients: list[str], subject: str) -> str:
    """Send, then wait until the runner has tried and deferred the remote recipient."""
    _send(server, sender, recipients, subject)

    def tried() -> str | None:
        for message in queue_list(server):
            remote = [r for r in message["recipients"] if r["address"].endswith(".test")]
            if remote and remote[0]["attempts"] >= 1 and not message["active"]:
                return str(message["id"])
        return None

    found = wait_for(tried, what=f"a deferred message\n{server.log()}")
    assert isinstance(found, str)
    return found


def _status_blocks(report: Message) -> list[Message]:
    (status,) = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    return blocks


def _dsn(server: Server, user: str) -> EmailMessage:
    (path,) = server.wait_delivered(user)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_bounce_sends_a_dsn_and_empties_the_queue(mta: Server) -> None:
    qid = _deferred(
        mta, "alice@localhost", ["bob@deferred.test", "carol@localhost"], "quarterly report"
    )
    mta.wait_delivered("carol")
    result = run(mta, "queue", "bounce", qid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{qid}: bounced <bob@deferred.test>; notification ")
    dsn = _dsn(mta, "alice")
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["From"] == "Mail Delivery System <MAILER-DAEMON@mx.test>"
    assert dsn["To"] == "alice@localhost"
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    assert dsn["Auto-Submitted"] == "auto-replied"
    human = next(p for p in dsn.walk() if p.get_content_type() == "text/plain")
    assert "<bob@deferred.test>: 554 5.4.7 Delivery cancelled by the mail system" in str(
        human.get_content()
    )
    per_message, *recipients = _status_blocks(dsn)
    assert per_message["Reporting-MTA"] == "dns; mx.test"
    assert per_message["X-Posthorn-Queue-ID"] == qid
    (bob,) = recipients  # carol was delivered before: she is not in the report
    assert bob["Final-Recipient"] == "rfc822; bob@deferred.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.4.7"
    diagnostic = " ".join(bob["Diagnostic-Code"].split())
    assert diagnostic.startswith("X-Posthorn; 554 5.4.7 Delivery cancelled by the mail system")
    assert "last attempt: 451 4.4.3 DNS lookup for deferred.test failed" in diagnostic
    (returned,) = [p for p in dsn.walk() if p.get_content_type() == "message/rfc822"]
    original = returned.get_payload()[0]
    assert original["Subject"] == "quarterly report"
    assert "body text" in original.get_content()
    wait_for(lambda: queue_list(mta) == [], what=f"the queue to empty\n{mta.log()}")
    assert run(mta, "queue", "bounce", qid).returncode == 66  # gone


def test_a_null_sender_gets_no_bounce(mta: Server) -> None:
    qid = _deferred(mta, "", ["bob@deferred.test"], "a bounce itself")
    result = run(mta, "queue", "bounce", qid)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{qid}: bounced <bob@deferred.test>; no notification (null sender)\n"
    assert queue_list(mta) == []  # removed at once, and no DSN was queued


def test_bounce_a_held_message_and_unknown_ids(mta: Server) -> None:
    qid = _deferred(mta, "alice@localhost", ["dave@deferred.test"], "held one")
    assert run(mta, "queue", "hold", qid).returncode == 0
    result = run(mta, "queue", "bounce", qid.lower(), "0000000000000000")
    assert result.returncode == 66
    assert result.stdout.startswith(f"{qid}: bounced <dave@deferred.test>; notification ")
    assert "0000000000000000: no such message in the queue" in result.stderr
    dsn = _dsn(mta, "alice")
    (dave,) = _status_blocks(dsn)[1:]
    assert dave["Final-Recipient"] == "rfc822; dave@deferred.test"
    wait_for(lambda: queue_list(mta) == [], what="the queue to empty")


def _active(server: Server) -> str | None:
    for message in queue_list(server):
        if message["active"]:
            return str(message["id"])
    return None


def test_a_delivery_in_progress_is_refused_or_waited_for(
    mta: Server, silent: socket.socket
) -> None:
    _send(mta, "alice@localhost", ["erin@slow.test"], "slow one")
    qid = wait_for(lambda: _active(mta), what=f"the runner to be delivering\n{mta.log()}")
    assert isinstance(qid, str)
    refused = run(mta, "queue", "bounce", qid, "--wait", "0")
    assert refused.returncode == 75
    assert f"{qid}: being delivered by mx.test" in refused.stderr
    (message,) = queue_list(mta)
    assert message["recipients"][0]["state"] == "pending"  # untouched
    cmd = posthorn_cmd(
        "queue", "bounce", qid, "--wait", "60",
        "--config", str(mta.config_path), "--data-dir", str(mta.data_dir),
    )  # fmt: skip
    waiting = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    try:
        # Once it says it is waiting, let the delivery end: closing the listener resets
        # the connection the runner is waiting on, so the runner defers and lets go.
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(waiting.stderr.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        assert first, "no word from the waiting bounce"
        assert "waiting up to 60s for that delivery to finish" in first[0]
        silent.close()
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err
    assert out.startswith(f"{qid}: bounced <erin@slow.test>; notification ")
    (erin,) = _status_blocks(_dsn(mta, "alice"))[1:]
    assert erin["Status"] == "5.4.7"
    assert "last attempt: 4" in " ".join(erin["Diagnostic-Code"].split())
    wait_for(lambda: queue_list(mta) == [], what="the queue to empty")


def test_help() -> None:
    result = subprocess.run(
        posthorn_cmd("queue", "bounce", "--help"),
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )
    assert result.returncode == 0
    assert "--wait SECONDS" in result.stdout
    assert "exit status 75" in " ".join(result.stdout.split())
