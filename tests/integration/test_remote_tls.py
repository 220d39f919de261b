"""STARTTLS policy of the SMTP client (RFC 3207, RFC 7435): opportunistic by default and
then encrypted even to a self-signed certificate; `none` for one destination sends no
STARTTLS; `required` toward a peer that does not offer it defers (4.7.4); and a cached
connection never carries mail for a destination with a stricter policy. The receiving
peer is aiosmtpd (with and without a certificate); the sender is a real Posthorn."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from support.relay import send
from support.server import Server, free_port, wait_log
from support.tls_cert import self_signed

ZONE = ""
MX_HOSTS = ("127.0.0.1",)


class _Recorder:
    """Each message's recipients, and whether its session was under TLS."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bool]] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.received.append((list(envelope.rcpt_tos), session.ssl is not None))
        return "250 2.0.0 Ok: relayed"


def _peer(tmp_path: Path, tls: bool) -> tuple[Controller, _Recorder]:
    context = None
    if tls:
        cert, key = self_signed(tmp_path, "peer.test")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    recorder = _Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), tls_context=context)
    controller.start()
    return controller, recorder


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Callable[[bool], tuple[Controller, _Recorder]]]:
    started: list[Controller] = []

    def start(tls: bool) -> tuple[Controller, _Recorder]:
        controller, recorder = _peer(tmp_path, tls)
        started.append(controller)
        return controller, recorder

    yield start
    for controller in started:
        controller.stop()


def _route(controller: Controller) -> str:
    return f'[routes]\n"*" = "smtp:[127.0.0.1]:{controller.port}"\n'


def test_opportunistic_tls_to_a_self_signed_peer(
    peer: Callable[[bool], tuple[Controller, _Recorder]], sender: Callable[..., Server]
) -> None:
    controller, recorder = peer(True)
    server = sender(_route(controller))  # smtp_client.tls is left at its default
    send(server, "alice@sender.test", ["bob@far.test"], b"Subject: tls\r\n\r\nsecret\r\n")
    (line,) = wait_log(server, r"to=<bob@far.test>.*status=sent")
    assert f"relay=127.0.0.1[127.0.0.1]:{controller.port}" in line
    (established,) = wait_log(server, r"Untrusted TLS connection established to 127\.0\.0\.1")
    assert "TLSv1." in established
    assert recorder.received == [(["bob@far.test"], True)]
    assert "certificate verify failed" not in server.log()


def test_policy_none_for_one_destination_sends_no_starttls(
    peer: Callable[[bool], tuple[Controller, _Recorder]], sender: Callable[..., Server]
) -> None:
    controller, recorder = peer(True)
    server = sender('tls_policy = { "plain.test" = "none" }\n' + _route(controller))
    send(server, "alice@sender.test", ["bob@plain.test"], b"Subject: plain\r\n\r\nx\r\n")
    wait_log(server, r"to=<bob@plain.test>.*status=sent")
    assert recorder.received == [(["bob@plain.test"], False)]
    assert "TLS connection established" not in server.log()


def test_required_tls_toward_a_peer_without_starttls_defers(
    peer: Callable[[bool], tuple[Controller, _Recorder]], sender: Callable[..., Server]
) -> None:
    controller, recorder = peer(False)
    server = sender('tls_policy = { "strict.test" = "required" }\n' + _route(controller))
    send(server, "alice@sender.test", ["bob@strict.test"], b"Subject: strict\r\n\r\nx\r\n")
    (line,) = wait_log(server, r"to=<bob@strict.test>.*status=deferred")
    # RFC 3463: X.7.4 "Security features not supported", temporary: the peer may learn.
    assert "451 4.7.4 TLS is required, but" in line
    assert "does not offer STARTTLS" in line
    assert recorder.received == []
    listed = server.cli("queue", "list")
    assert b"4.7.4" in listed.stdout


def test_a_plaintext_connection_is_not_reused_for_a_destination_that_requires_tls(
    peer: Callable[[bool], tuple[Controller, _Recorder]], sender: Callable[..., Server]
) -> None:
    controller, recorder = peer(True)
    policies = 'tls_policy = { "plain.test" = "none", "strict.test" = "required" }\n'
    server = sender(policies + "connection_reuse_time = 30.0\n" + _route(controller))
    send(server, "alice@sender.test", ["bob@plain.test"], b"Subject: 1\r\n\r\nx\r\n")
    wait_log(server, r"to=<bob@plain.test>.*status=sent")
    send(server, "alice@sender.test", ["bob@strict.test"], b"Subject: 2\r\n\r\nx\r\n")
    wait_log(server, r"to=<bob@strict.test>.*status=sent")
    assert recorder.received == [(["bob@plain.test"], False), (["bob@strict.test"], True)]
