"""LMTP delivery (RFC 2033) to a real Dovecot LMTP server that each test starts in a temp
dir: what Dovecot stored is read back from its Maildirs. One message, several mailboxes,
one verdict each: a recipient over quota fails after DATA while the others are saved."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from posthorn.delivery.lmtp import LmtpTarget, parse_lmtp_target
from support.dovecot import running_dovecot
from support.server import Server, env, free_port, posthorn_cmd, wait_for

pytestmark = pytest.mark.timeout(120)


def lmtp_config(target: str) -> str:
    return f"""
[local]
domains = ["mail.test"]
mailbox = "{target}"

[queue]
retry_delays = [3600.0]
"""


def queue(server: Server) -> list[dict[str, object]]:
    done = server.cli("queue", "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    listing: list[dict[str, object]] = json.loads(done.stdout)
    return listing


def test_each_recipient_gets_its_own_verdict_after_data(
    make_server: Callable[..., Server],
) -> None:
    with running_dovecot("alice", "bob", "carol", "tiny") as dovecot:
        server = make_server(lmtp_config(f"lmtp:127.0.0.1:{dovecot.port}"))
        body = "Grüße\r\n" + "line of text\r\n" * 200  # 8-bit and over tiny's 1 KB quota
        content = f"Subject: to the mailbox server\r\n\r\n{body}".encode()
        with server.smtp() as client:
            refused = client.sendmail(
                "alice@mail.test",
                ["bob@mail.test", "carol+lists@mail.test", "tiny@mail.test", "nosuch@mail.test"],
                content,
            )
        assert refused == {}  # Posthorn accepts every local name; Dovecot decides

        (to_bob,) = dovecot.wait_messages("bob", 1)
        (to_carol,) = dovecot.wait_messages("carol", 1)
        for stored in (to_bob, to_carol):
            assert stored["Subject"] == "to the mailbox server"
            assert stored["Return-Path"] == "<alice@mail.test>"  # Dovecot, from MAIL FROM
            assert any("by mx.test" in r for r in stored.get_all("Received", []))
            payload = stored.get_payload(decode=True)
            assert payload == body.encode().replace(b"\r\n", b"\n")  # 8-bit, byte for byte
        assert dovecot.messages("tiny") == []  # 552 5.2.2 after the final dot

        # The failures (one after DATA, one at RCPT) come back to the sender in one DSN,
        # itself delivered through LMTP into alice's mailbox.
        (dsn,) = dovecot.wait_messages("alice", 1)
        assert dsn.get_content_type() == "multipart/report"
        report = dsn.as_string()
        assert "tiny@mail.test" in report
        assert "5.2.2" in report
        assert "nosuch@mail.test" in report
        assert "5.1.1" in report
        assert "Final-Recipient: rfc822; bob@mail.test" not in report
        wait_for(lambda: queue(server) == [], 30, "an empty queue")
        log = server.log()
        assert f"to=<bob@mail.test>, relay=127.0.0.1[127.0.0.1]:{dovecot.port}" in log
        assert "to=<tiny@mail.test>" in log
        assert "status=bounced (552 5.2.2" in log


def test_lmtp_over_a_unix_socket(make_server: Callable[..., Server]) -> None:
    with running_dovecot("bob") as dovecot:
        server = make_server(lmtp_config(f"lmtp:unix:{dovecot.socket}"))
        with server.smtp() as client:
            client.sendmail(
                "someone@example.org", ["bob@mail.test"], b"Subject: unix\r\n\r\nx\r\n"
            )
        (stored,) = dovecot.wait_messages("bob", 1)
        assert stored["Subject"] == "unix"
        wait_for(lambda: f"relay=lmtp[{dovecot.socket}]" in server.log(), 10, "the log line")


def test_mail_waits_while_the_mailbox_server_is_down(make_server: Callable[..., Server]) -> None:
    port = free_port()  # nothing listens here yet
    server = make_server(lmtp_config(f"lmtp:127.0.0.1:{port}"))
    with server.smtp() as client:
        client.sendmail("someone@example.org", ["bob@mail.test"], b"Subject: later\r\n\r\nx\r\n")

    def deferred() -> bool:
        listing = queue(server)
        return bool(listing) and "4.4.1" in str(listing[0]["recipients"])

    wait_for(deferred, 30, "a deferral for the unreachable mailbox server")
    with running_dovecot("bob", port=port) as dovecot:
        done = server.cli("queue", "flush")
        assert done.returncode == 0, done.stderr.decode()
        (stored,) = dovecot.wait_messages("bob", 1)
        assert stored["Subject"] == "later"
        wait_for(lambda: queue(server) == [], 30, "an empty queue")


@pytest.mark.parametrize(
    "target", ["smtp:127.0.0.1:24", "lmtp:", "lmtp:unix:relative", "lmtp:host:99999"]
)
def test_a_bad_mailbox_target_is_a_config_error(tmp_path: Path, target: str) -> None:
    config = tmp_path / "posthorn.toml"
    config.write_text(f'[local]\nmailbox = "{target}"\n')
    done = subprocess.run(
        posthorn_cmd("config", "check", "--config", str(config)),
        capture_output=True,
        env=env(),
        timeout=60,
    )
    assert done.returncode == 78
    assert b"local.mailbox" in done.stderr


def test_targets() -> None:
    assert parse_lmtp_target("lmtp:unix:/run/dovecot/lmtp") == LmtpTarget(path="/run/dovecot/lmtp")
    assert parse_lmtp_target("lmtp:127.0.0.1:2424") == LmtpTarget("127.0.0.1", 2424)
    assert parse_lmtp_target("lmtp:inet:mail.example:24") == LmtpTarget("mail.example", 24)
    assert parse_lmtp_target("lmtp:[::1]:24") == LmtpTarget("::1", 24)
    assert parse_lmtp_target("lmtp:mailstore") == LmtpTarget("mailstore", 24)  # RFC 2033 port
