"""SMTP AUTH (RFC 4954): PLAIN and LOGIN under TLS, failures, throttling, submission."""

from __future__ import annotations

import base64
import json
import smtplib
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from support.queuedb import queued_contents
from support.server import Server, free_port, wait_for
from support.tlsauth import Pki, set_password

PASSWORD = "correct horse battery staple"
MESSAGE = b"From: alice@example.org\r\nSubject: auth\r\n\r\nhello\r\n"


def _tls_client(server: Server, pki: Pki, port: int | None = None) -> smtplib.SMTP:
    client = smtplib.SMTP(
        "127.0.0.1", port or server.port, local_hostname="client.test", timeout=10
    )
    client.ehlo()
    client.starttls(context=pki.client_context())
    client.ehlo()
    return client


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def _queued(server: Server) -> list[dict[str, object]]:
    result = server.cli("queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_passwd_command_writes_scrypt_hash_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    assert set_password(path, "bob", "s3cret").returncode == 0
    assert set_password(path, "carol", "other").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["bob", "carol"]
    assert all(line.split(":", 1)[1].startswith("$scrypt$ln=") for line in lines)
    assert "s3cret" not in path.read_text()
    bad = set_password(path, "bad:name", "x")
    assert bad.returncode != 0
    assert b"invalid user name" in bad.stderr


def test_auth_plain_success_allows_relay_and_marks_esmtpsa(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    server = secure_server()
    with _tls_client(server, pki) as client:
        code, text = client.login("alice", PASSWORD)  # smtplib picks PLAIN here
        assert code == 235, text
        assert b"2.7.0" in text
        client.sendmail("alice@example.org", ["carol@example.net"], MESSAGE)
    (message,) = _queued(server)
    assert message["recipients"][0]["address"] == "carol@example.net"  # type: ignore[index]
    assert "sasl_method=PLAIN, sasl_username=alice" in server.log()


def test_auth_login_success(secure_server: Callable[..., Server], pki: Pki) -> None:
    server = secure_server()
    with _tls_client(server, pki) as client:
        client.user, client.password = "alice", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235
        assert client.docmd("AUTH", "PLAIN " + _plain("alice", PASSWORD))[0] == 503
        client.sendmail("alice@example.org", ["carol@example.net"], MESSAGE)
    assert len(_queued(server)) == 1


def test_auth_failure_is_535_578_and_relay_stays_closed(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    server = secure_server()
    with _tls_client(server, pki) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("alice", "wrong password")
        assert info.value.smtp_code == 535
        assert info.value.smtp_error.startswith(b"5.7.8")
        code, _ = client.docmd("AUTH", "PLAIN " + _plain("nobody", PASSWORD))
        assert code == 535
        client.mail("alice@example.org")
        code, text = client.rcpt("carol@example.net")
        assert code == 554
        assert b"Relay access denied" in text


def test_auth_malformed_and_cancelled(secure_server: Callable[..., Server], pki: Pki) -> None:
    server = secure_server()
    with _tls_client(server, pki) as client:
        assert client.docmd("AUTH", "PLAIN not-base64!")[0] == 501
        assert client.docmd("AUTH", "PLAIN " + base64.b64encode(b"no-nuls").decode())[0] == 501
        assert client.docmd("AUTH", "CRAM-MD5")[0] == 504
        assert client.docmd("AUTH", "LOGIN")[0] == 334
        assert client.docmd("*")[0] == 501  # RFC 4954: the client cancelled
        assert client.noop()[0] == 250


def test_auth_refused_without_tls(secure_server: Callable[..., Server]) -> None:
    server = secure_server()
    with server.smtp() as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN " + _plain("alice", PASSWORD))
        assert code == 530
        assert b"STARTTLS" in text
        client.mail("alice@example.org")
        assert client.rcpt("carol@example.net")[0] == 554


def test_plaintext_auth_on_loopback_only_when_configured(
    secure_server: Callable[..., Server],
) -> None:
    server = secure_server(auth="allow_plaintext_loopback = true\n")
    with server.smtp() as client:
        client.ehlo()
        assert client.has_extn("auth")
        assert client.login("alice", PASSWORD)[0] == 235


def test_repeated_failures_are_throttled(secure_server: Callable[..., Server], pki: Pki) -> None:
    server = secure_server(auth="max_failures = 2\nfailure_delay = 0.0\n")
    with _tls_client(server, pki) as client:
        for _ in range(2):
            assert client.docmd("AUTH", "PLAIN " + _plain("alice", "guess"))[0] == 535
    with _tls_client(server, pki) as client:
        # Even the right password is not tried now: the client IP is throttled.
        code, text = client.docmd("AUTH", "PLAIN " + _plain("alice", PASSWORD))
        assert code == 421
        assert b"4.7.0" in text
    assert "AUTH throttled" in server.log()


def test_submission_listener_requires_tls_then_auth(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    port = free_port()
    server = secure_server(
        f'[submission]\nlisten = ["127.0.0.1:{port}"]\n', trusted='["127.0.0.0/8"]'
    )
    wait_for(lambda: f"127.0.0.1:{port} (submission)" in server.log(), what="submission")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as client:
        client.ehlo()
        code, text = client.mail("alice@example.org")
        assert code == 530
        assert b"STARTTLS" in text
        client.rset()
        client.starttls(context=pki.client_context())
        client.ehlo()
        code, text = client.mail("alice@example.org")
        # Trusted network or not: submission wants AUTH (RFC 6409 section 4.3).
        assert code == 530
        assert text == b"5.7.0 Authentication required"
        client.rset()
        client.login("alice", PASSWORD)
        client.sendmail("alice@example.org", ["bob@mx.test"], MESSAGE)
    (message,) = _queued(server)
    assert message["recipients"][0]["address"] == "bob@mx.test"  # type: ignore[index]
    (content,) = queued_contents(server)
    assert b"with ESMTPSA id" in content.split(b"\r\n\r\n")[0]
    # The plain listener on the same server does not ask for AUTH from a trusted client.
    with server.smtp() as client:
        client.sendmail("alice@example.org", ["bob@mx.test"], MESSAGE)
    assert len(_queued(server)) == 2
