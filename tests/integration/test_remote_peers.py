"""What a message needs from a peer: 8BITMIME (or a 7-bit downgrade), SMTPUTF8, SIZE;
connection reuse; the transport table and a smart host with STARTTLS and AUTH. Receivers
are smtp-sink, a second Posthorn, and aiosmtpd (for TLS and AUTH)."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from support.dns import DnsServer
from support.relay import Sink, send
from support.server import Server, free_port, wait_log
from support.tls_cert import self_signed

MX1, MX2 = "127.0.0.2", "127.0.0.3"
MX_HOSTS = (MX1, MX2)
ZONE = f"""
example.test. 300 IN MX 10 mx1.example.test.
example.test. 300 IN MX 20 mx2.example.test.
mx1.example.test. 300 IN A {MX1}
mx2.example.test. 300 IN A {MX2}
small.test. 300 IN MX 10 mx1.example.test.
relay.test. 300 IN A 127.0.0.1
"""
EIGHT_BIT = (
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    "From: alice@sender.test\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Köln, naïve café.\r\n"
    ".a line with a leading dot\r\n"
).encode()


@pytest.fixture
def receiver(tmp_path: Path, port: int) -> Iterator[Callable[..., Server]]:
    """A second Posthorn on its own loopback address, taking mail for example.test."""
    started: list[Server] = []

    def start(host: str, extra: str = "", at: int | None = None) -> Server:
        config = f'[server]\nhostname = "{host}.example.test"\n'
        config += '[local]\ndomains = ["example.test", "small.test"]\n' + extra
        server = Server(tmp_path / f"rx-{host}", config, host=host, port=at or port)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def _body_bytes(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.replace(b"\r\n", b"\n")


def test_peer_without_8bitmime_gets_7bit_that_decodes_to_the_original(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    receiver = sinks(MX1, "-8")
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], EIGHT_BIT)
    (dump,) = receiver.wait_messages(1)
    assert max(dump) < 0x80, "8-bit octets reached a peer without 8BITMIME"
    assert b"Content-Transfer-Encoding: quoted-printable" in dump
    assert b"BODY=8BITMIME" not in dump
    original = _body_bytes(EIGHT_BIT)
    # Past smtp-sink's own five headers and its Received; it ends each dump with a newline.
    assert _body_bytes(dump.split(b"\n", 8)[8][:-1]) == original
    assert "Grüße aus Köln".encode() in original


def test_peer_with_8bitmime_gets_the_bytes_as_they_are(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    receiver = sinks(MX1)
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], EIGHT_BIT)
    (dump,) = receiver.wait_messages(1)
    assert b"BODY=8BITMIME" in dump
    assert "Grüße aus Köln, naïve café.\n".encode() in dump


def test_smtputf8_message_skips_a_peer_without_it(
    sinks: Callable[..., Sink], receiver: Callable[..., Server], sender: Callable[..., Server]
) -> None:
    plain = sinks(MX1)  # smtp-sink does not offer SMTPUTF8
    utf8 = receiver(MX2)
    server = sender()
    data = "Subject: Grüße\r\nFrom: ålice@sender.test\r\n\r\nHallo\r\n".encode()
    with server.smtp() as client:
        client.sendmail("ålice@sender.test", ["bob@example.test"], data, mail_options=["SMTPUTF8"])
    (line,) = wait_log(server, r"status=sent")
    assert f"relay=mx2.example.test[{MX2}]" in line
    assert wait_log(server, r"does not support SMTPUTF8")
    assert plain.messages() == []
    (path,) = utf8.wait_delivered("bob")
    assert (
        "Return-Path: <ålice@sender.test>\nDelivered-To: bob@example.test\n".encode()
        in path.read_bytes()
    )
    assert "Subject: Grüße".encode() in path.read_bytes()


def test_message_larger_than_the_peer_size_is_not_sent(
    receiver: Callable[..., Server], sender: Callable[..., Server]
) -> None:
    small = receiver(MX1, "[smtp]\nmax_message_size = 2000\n")
    server = sender()
    big = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 0 + (b"y" * 76 + b"\r\n") * 60
    send(server, "alice@sender.test", ["bob@small.test"], big)
    (line,) = wait_log(server, r"to=<bob@small.test>.*status=bounced")
    assert "552 5.3.4" in line
    assert "exceeds the limit 2000" in line
    wait_log(small, r"disconnect from")
    assert "mail=" not in small.log(), "MAIL was sent although SIZE forbids it"
    (path,) = server.wait_delivered("alice")
    assert b"Status: 5.3.4" in path.read_bytes()


def test_messages_to_one_destination_share_a_connection(
    receiver: Callable[..., Server], sender: Callable[..., Server]
) -> None:
    rx = receiver(MX1)
    server = sender("destination_concurrency = 1\nconnection_reuse_time = 10.0\n")
    with server.smtp() as client:
        for i in range(3):
            client.sendmail(
                "alice@sender.test", ["bob@example.test"], b"Subject: %d\r\n\r\nx\r\n" % i
            )
    wait_log(server, r"status=sent", 3)
    rx.wait_delivered("bob", 3)
    server.stop()  # QUIT the cached connection, so the receiver logs its counters
    # One session carried all three (the other sessions are start-up probes, no MAIL),
    # with an RSET before the second and the third MAIL, as Postfix does on reuse.
    (line,) = wait_log(rx, r"disconnect from .*mail=")
    assert "ehlo=1 mail=3 rcpt=3 data=3 accepted=3 rset=2 quit=1" in line


def test_route_table_sends_a_domain_to_a_fixed_relay(
    receiver: Callable[..., Server], sender: Callable[..., Server], dns: DnsServer
) -> None:
    relay_port = free_port()
    rx = receiver("127.0.0.1", at=relay_port)
    server = sender(f'[routes]\n"example.test" = "smtp:[127.0.0.1]:{relay_port}"\n')
    send(server, "alice@sender.test", ["bob@example.test"], b"Subject: routed\r\n\r\nx\r\n")
    (line,) = wait_log(server, r"status=sent")
    assert f"relay=127.0.0.1[127.0.0.1]:{relay_port}" in line
    rx.wait_delivered("bob")
    assert not [q for q in dns.queries if q[0] == "example.test"], "MX lookup despite route"


# -- a smart host with STARTTLS and AUTH (aiosmtpd) ---------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[Envelope, bool, bool]] = []
        self.logins: list[bytes] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.received.append((envelope, session.ssl is not None, session.authenticated))
        return "250 2.0.0 Ok: relayed"

    def authenticate(
        self, server: object, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"hub", b"s3cret")
        if ok and isinstance(data, LoginPassword):
            self.logins.append(data.login)
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smart_host(tmp_path: Path) -> Iterator[tuple[Controller, _Recorder, Path]]:
    cert, key = self_signed(tmp_path, "relay.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = _Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=recorder.authenticate,
        auth_required=True,
    )
    controller.start()
    yield controller, recorder, cert
    controller.stop()


@pytest.mark.parametrize("policy", ["required", "verify"])
def test_smart_host_with_starttls_and_auth(
    smart_host: tuple[Controller, _Recorder, Path], sender: Callable[..., Server], policy: str
) -> None:
    controller, recorder, cert = smart_host
    server = sender(
        f'tls = "{policy}"\ntls_ca_file = "{cert}"\n'
        '[smtp_client.credentials]\n"relay.test" = "hub:s3cret"\n'
        f'[routes]\n"*" = "smtp:[relay.test]:{controller.port}"\n'
    )
    send(
        server, "alice@sender.test", ["someone@far.away.test"], b"Subject: hub\r\n\r\nvia hub\r\n"
    )
    (line,) = wait_log(server, r"to=<someone@far.away.test>.*status=sent")
    assert f"relay=relay.test[127.0.0.1]:{controller.port}" in line
    ((envelope, tls, authenticated),) = recorder.received
    assert tls
    assert authenticated
    assert recorder.logins == [b"hub"]
    assert envelope.rcpt_tos == ["someone@far.away.test"]
    assert b"via hub" in (envelope.original_content or b"")


def test_verify_policy_refuses_an_unknown_certificate(
    smart_host: tuple[Controller, _Recorder, Path], sender: Callable[..., Server]
) -> None:
    controller, recorder, _ = smart_host
    server = sender(
        'tls = "verify"\n[smtp_client.credentials]\n"relay.test" = "hub:s3cret"\n'
        f'[routes]\n"*" = "smtp:[relay.test]:{controller.port}"\n'
    )
    send(server, "alice@sender.test", ["someone@far.away.test"], b"Subject: hub\r\n\r\nx\r\n")
    (line,) = wait_log(server, r"status=deferred")
    assert "4.7.5" in line
    assert "TLS" in line
    assert recorder.received == []


def test_wrong_credentials_defer_instead_of_bouncing(
    smart_host: tuple[Controller, _Recorder, Path], sender: Callable[..., Server]
) -> None:
    controller, recorder, _ = smart_host
    server = sender(
        'tls = "required"\n[smtp_client.credentials]\n"relay.test" = "hub:wrong"\n'
        f'[routes]\n"*" = "smtp:[relay.test]:{controller.port}"\n'
    )
    send(server, "alice@sender.test", ["someone@far.away.test"], b"Subject: hub\r\n\r\nx\r\n")
    (line,) = wait_log(server, r"status=deferred")
    assert "4.7.8" in line
    assert "authentication failed" in line
    assert recorder.received == []
