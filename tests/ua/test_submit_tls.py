"""STARTTLS and AUTH on submission: `posthorn send` against a real TLS server (aiosmtpd).

The client side is tested here against aiosmtpd, which speaks STARTTLS with a
throw-away certificate (tests/support/tls_cert.py) and AUTH PLAIN/LOGIN with a password
check of ours; Posthorn's own server side of TLS and AUTH is tested in tests/security.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from support.server import env, free_port, posthorn_cmd
from support.tls_cert import self_signed


@dataclass
class Recorder:
    """aiosmtpd handler: keeps each message with the AUTH identity it came with."""

    messages: list[tuple[str, list[str], bytes, Any]] = field(default_factory=list)
    mail_options: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.auth_data)
        )
        self.mail_options.append(list(envelope.mail_options))
        return "250 2.0.0 Ok: queued"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alice", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


@dataclass
class TlsServer:
    port: int
    cert: Path
    recorder: Recorder


@contextlib.contextmanager
def _running(
    tmp_path: Path, exclude: tuple[str, ...] = (), smtputf8: bool = False
) -> Iterator[TlsServer]:
    cert, key = self_signed(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=exclude,
        enable_SMTPUTF8=smtputf8,
    )
    controller.start()
    try:
        yield TlsServer(port, cert, recorder)
    finally:
        controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    with _running(tmp_path) as server:
        yield server


def _send(
    tmp_path: Path, server: TlsServer, config: str, *args: str, password: str = "s3cret"
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "password").write_text(password + "\n")
    (tmp_path / "posthorn.toml").write_text(
        f'[server]\nhostname = "client.test"\n[submit]\nserver = "127.0.0.1:{server.port}"\n'
        + config.replace("PASSWORD_FILE", str(tmp_path / "password"))
    )
    cmd = posthorn_cmd(
        "send", "-v", "-s", "over TLS", "-r", "alice@client.test", *args,
        "--config", str(tmp_path / "posthorn.toml"), "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    environment = env() | {"DEAD": str(tmp_path / "dead.letter")}
    return subprocess.run(
        cmd, input="secret body\n", capture_output=True, text=True, env=environment, timeout=60
    )


def test_starttls_then_auth_plain(tmp_path: Path, tls_server: TlsServer) -> None:
    result = _send(
        tmp_path,
        tls_server,
        f'starttls = "require"\nca_file = "{tls_server.cert}"\n'
        'auth_user = "alice"\nauth_password_file = "PASSWORD_FILE"\n',
        "bob@example.test",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    lines = out.splitlines()
    # The dialogue: EHLO, STARTTLS, the handshake, EHLO again, AUTH, the transaction.
    starttls = lines.index(">>> STARTTLS")
    assert lines[starttls + 1].startswith("220 ")
    assert lines[starttls + 2].startswith("TLS started: TLSv1.")
    assert lines[starttls + 3] == ">>> EHLO client.test"
    assert ">>> AUTH PLAIN ********" in lines
    assert any(line.startswith("235 ") for line in lines)
    assert "s3cret" not in out
    assert "czNjcmV0" not in out
    mail = next(i for i, line in enumerate(lines) if line.startswith(">>> MAIL FROM:<alice@"))
    assert lines.index(">>> AUTH PLAIN ********") < mail
    ((sender, rcpts, content, auth),) = tls_server.recorder.messages
    assert (sender, rcpts, auth) == ("alice@client.test", ["bob@example.test"], b"alice")
    assert b"Subject: over TLS" in content
    assert content.endswith(b"secret body\r\n")


def test_wrong_password_is_refused(tmp_path: Path, tls_server: TlsServer) -> None:
    result = _send(
        tmp_path,
        tls_server,
        f'ca_file = "{tls_server.cert}"\nauth_user = "alice"\n'
        'auth_password_file = "PASSWORD_FILE"\n',
        "bob@example.test",
        password="wrong",
    )
    assert result.returncode == 69, result.stdout  # EX_UNAVAILABLE: 535 is permanent
    assert "AUTH refused: 535" in result.stderr
    assert tls_server.recorder.messages == []


def test_untrusted_certificate_stops_before_any_mail(
    tmp_path: Path, tls_server: TlsServer
) -> None:
    # No ca_file: the self-signed certificate is not trusted; nothing may be sent.
    result = _send(tmp_path, tls_server, "", "bob@example.test")
    assert result.returncode == 69, result.stdout
    assert "TLS certificate of 127.0.0.1 not trusted" in result.stderr
    assert ">>> MAIL" not in result.stdout
    assert tls_server.recorder.messages == []
    assert "over TLS" in (tmp_path / "dead.letter").read_text()


def test_starttls_never_meets_a_server_that_requires_it(
    tmp_path: Path, tls_server: TlsServer
) -> None:
    result = _send(tmp_path, tls_server, 'starttls = "never"\n', "bob@example.test")
    assert result.returncode == 69, result.stdout  # 530 Must issue a STARTTLS command first
    assert "refused: 530" in result.stderr
    assert tls_server.recorder.messages == []


def test_auth_login_when_plain_is_not_offered(tmp_path: Path) -> None:
    with _running(tmp_path, exclude=("PLAIN",)) as server:
        result = _send(
            tmp_path,
            server,
            f'ca_file = "{server.cert}"\nauth_user = "alice"\n'
            'auth_password_file = "PASSWORD_FILE"\n',
            "bob@example.test",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        login = lines.index(">>> AUTH LOGIN")
        assert lines[login + 2 : login + 5 : 2] == [">>> ********", ">>> ********"]
        assert "YWxpY2U=" not in result.stdout  # not even the user name, base64
        assert [auth for *_, auth in server.recorder.messages] == [b"alice"]


def test_utf8_address_is_sent_with_smtputf8(tmp_path: Path) -> None:
    with _running(tmp_path, smtputf8=True) as server:
        result = _send(
            tmp_path, server, f'ca_file = "{server.cert}"\n', "Jørn <jørn@example.test>"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        ((_, rcpts, content, _),) = server.recorder.messages
        assert rcpts == ["jørn@example.test"]
        # RFC 6531 section 3.4: SMTPUTF8 declared; the UTF-8 header makes the body 8-bit.
        assert set(server.recorder.mail_options[0]) >= {"SMTPUTF8", "BODY=8BITMIME"}
        assert "To: Jørn <jørn@example.test>".encode() in content


def test_utf8_address_needs_a_server_that_offers_smtputf8(tls_server: TlsServer) -> None:
    tmp_path = tls_server.cert.parent.parent
    result = _send(tmp_path, tls_server, f'ca_file = "{tls_server.cert}"\n', "jørn@example.test")
    assert result.returncode == 69, result.stdout
    assert "does not offer SMTPUTF8" in result.stderr
    assert tls_server.recorder.messages == []
