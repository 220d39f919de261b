"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with real clients: smtplib and swaks."""

from __future__ import annotations

import contextlib
import json
import smtplib
import socket
import ssl
import subprocess
import warnings
from collections.abc import Callable

import pytest

from support.queuedb import queued_contents
from support.server import Server, free_port, wait_for
from support.tlsauth import Pki

MESSAGE = b"From: alice@example.org\r\nSubject: tls\r\n\r\nover TLS\r\n"


def _queued(server: Server) -> list[dict[str, object]]:
    result = server.cli("queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def _content(server: Server) -> bytes:
    (content,) = queued_contents(server)
    return content


def test_ehlo_offers_starttls_and_no_auth_in_clear(secure_server: Callable[..., Server]) -> None:
    server = secure_server()
    with server.smtp() as client:
        code, _ = client.ehlo()
        assert code == 250
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")


def test_smtplib_starttls_then_message(secure_server: Callable[..., Server], pki: Pki) -> None:
    server = secure_server(trusted='["127.0.0.0/8"]')
    with server.smtp() as client:
        client.ehlo()
        code, text = client.starttls(context=pki.client_context())
        assert code == 220, text
        version = client.sock.version()  # type: ignore[union-attr]
        assert version in ("TLSv1.2", "TLSv1.3")
        client.ehlo()
        assert not client.has_extn("starttls")  # RFC 3207: not offered again
        assert client.has_extn("auth")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.sendmail("alice@example.org", ["bob@mx.test"], MESSAGE)
    content = _content(server)
    received = content.split(b"\r\n\r\n", 1)[0]
    assert b"with ESMTPS id" in received
    assert f"using {version} with cipher".encode() in received


def test_second_starttls_is_refused(secure_server: Callable[..., Server], pki: Pki) -> None:
    server = secure_server()
    with server.smtp() as client:
        client.ehlo()
        client.starttls(context=pki.client_context())
        client.ehlo()
        code, _ = client.docmd("STARTTLS")
        assert code in (502, 503)
        assert client.noop()[0] == 250


def test_tls_below_1_2_is_refused_and_server_keeps_serving(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    server = secure_server()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(pki.cert))
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client at least try TLS 1.1
    with server.smtp() as client:
        client.ehlo()
        with pytest.raises((ssl.SSLError, ConnectionError, smtplib.SMTPServerDisconnected)):
            client.starttls(context=old)
    with server.smtp() as client:
        assert client.noop()[0] == 250


def test_swaks_tls(secure_server: Callable[..., Server]) -> None:
    server = secure_server(trusted='["127.0.0.0/8"]')
    result = subprocess.run(
        [
            "swaks", "--server", f"127.0.0.1:{server.port}", "--tls",
            "--from", "alice@example.org", "--to", "bob@mx.test",
            "--helo", "client.test", "--timeout", "20",
        ],
        capture_output=True, timeout=60,
    )  # fmt: skip
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, out
    assert " -> STARTTLS" in out
    assert "<-  220 2.0.0 Ready to start TLS" in out
    assert "TLS started" in out
    assert "with ESMTPS" in _content(server).decode(errors="replace")


def _read_reply(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def test_plaintext_pipelined_after_starttls_is_discarded(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    """CVE-2011-0411: commands sent in clear with STARTTLS must not run after the upgrade."""
    server = secure_server(trusted='["127.0.0.0/8"]')
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        assert _read_reply(raw).startswith(b"220")
        raw.sendall(b"EHLO client.test\r\n")
        assert b"STARTTLS" in _read_reply(raw)
        raw.sendall(
            b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<bob@mx.test>\r\nDATA\r\n"
        )
        assert _read_reply(raw).startswith(b"220")
        tls = pki.client_context().wrap_socket(raw, server_hostname="mx.test")
        tls.sendall(b"EHLO client.test\r\n")
        assert _read_reply(tls).startswith(b"250")
        # Had the injected MAIL survived, this RCPT would be accepted.
        tls.sendall(b"RCPT TO:<bob@mx.test>\r\n")
        assert _read_reply(tls).startswith(b"503")
        tls.sendall(b"QUIT\r\n")
        assert _read_reply(tls).startswith(b"221")
    assert _queued(server) == []


def test_implicit_tls_listener(secure_server: Callable[..., Server], pki: Pki) -> None:
    port = free_port()
    server = secure_server(f'[submission]\ntls_listen = ["127.0.0.1:{port}"]\n')
    wait_for(lambda: _connectable(port), what="implicit TLS port")
    with smtplib.SMTP_SSL(
        "127.0.0.1", port, local_hostname="client.test", context=pki.client_context(), timeout=10
    ) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        code, _ = client.mail("alice@example.org")
        assert code == 530  # submission: AUTH before MAIL
        client.rset()
        client.login("alice", "correct horse battery staple")
        client.sendmail("alice@example.org", ["carol@example.net"], MESSAGE)
    content = _content(server).decode(errors="replace")
    assert "with ESMTPSA" in content
    assert "using TLSv1." in content


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_server_refuses_to_start_tls_listener_without_cert(tmp_path: object) -> None:
    from pathlib import Path

    from support.server import env, posthorn_cmd

    root = Path(str(tmp_path))
    config = root / "p.toml"
    config.write_text(f'[submission]\ntls_listen = ["127.0.0.1:{free_port()}"]\n')
    result = subprocess.run(
        posthorn_cmd("serve", "--config", str(config), "--data-dir", str(root / "d"),
                     "--listen", f"127.0.0.1:{free_port()}"),
        capture_output=True, env=env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 78
    assert b"tls_listen needs tls.cert" in result.stderr
