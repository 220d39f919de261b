"""AUTH is offered in plaintext to loopback clients only (RFC 4954 section 4, RFC 3207):
`auth.allow_plaintext_loopback = true` must not reach a client anywhere else.

Test servers bind loopback only, and every 127/8 address is loopback, so a remote
client cannot connect here: the real listener's session code (the daemon's wiring,
`Session`, the server core and the conversation loop) is run over a scripted byte
channel that reports a non-loopback peer address instead.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from posthorn import daemon
from posthorn.config import Config, resolve
from posthorn.config.loader import load_text
from support.tlsauth import Pki

PASSWORD = "correct horse battery staple"


class ScriptedClient:
    """A `Wire` whose client sends one command per read and reads everything at the end."""

    discarded = 0  # bytes dropped before a TLS handshake (none here)

    def __init__(self, *commands: str) -> None:
        self.script = [f"{c}\r\n".encode() for c in commands]
        self.received = bytearray()

    async def read(self, within: float) -> bytes:
        return self.script.pop(0) if self.script else b""

    def write(self, data: bytes | bytearray) -> None:
        self.received += data

    async def drain(self) -> None:
        return None

    async def begin_tls(self) -> str:
        raise AssertionError("this client never starts TLS")

    def tls_description(self) -> str:
        return ""

    def replies(self) -> list[list[str]]:
        """The server's replies, each as its lines (greeting first)."""
        out: list[list[str]] = []
        current: list[str] = []
        for line in self.received.decode().split("\r\n")[:-1]:
            current.append(line)
            if line[3:4] != "-":
                out.append(current)
                current = []
        return out


def _config(tmp_path: Path, pki: Pki, password_file: Path) -> Config:
    text = (
        '[server]\nhostname = "mx.test"\n'
        + pki.config()
        + f'[auth]\npassword_file = "{password_file}"\nallow_plaintext_loopback = true\n'
        + "[relay]\ntrusted_networks = []\n"
        + "[limits]\ntarpit_delay = 0\n"
        + '[mailauth]\nspf = "none"\ndkim = "none"\ndmarc = "none"\n'
    )
    return resolve(load_text(Config, text), data_dir=str(tmp_path / "data"))


def _converse(config: Config, address: str) -> list[list[str]]:
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    client = ScriptedClient(
        "EHLO client.test",
        f"AUTH PLAIN {plain}",
        "MAIL FROM:<alice@example.org>",
        "RCPT TO:<carol@example.net>",
        "QUIT",
    )
    listener = daemon.build(config).listener
    asyncio.run(listener._session(client, address))  # type: ignore[arg-type]
    return client.replies()


@pytest.mark.parametrize("address", ["192.0.2.10", "2001:db8::25", "198.51.100.7"])
def test_plaintext_auth_not_offered_to_non_loopback_client(
    tmp_path: Path, pki: Pki, password_file: Path, address: str
) -> None:
    config = _config(tmp_path, pki, password_file)
    greeting, ehlo, auth, mail, rcpt, quit_ = _converse(config, address)
    assert greeting[0].startswith("220 ")
    keywords = [line[4:].split()[0].upper() for line in ehlo[1:]]
    assert "STARTTLS" in keywords
    assert "AUTH" not in keywords, ehlo
    # RFC 3207 section 4 / RFC 4954 section 4: no AUTH before TLS for this client.
    assert auth == ["530 5.7.0 Must issue a STARTTLS command first"]
    assert mail[0].startswith("250 ")
    # Not authenticated, not trusted: relaying stays closed.
    assert rcpt[0].startswith("554 5.7.1")
    assert quit_[0].startswith("221 ")


def test_plaintext_auth_offered_to_loopback_client_under_same_config(
    tmp_path: Path, pki: Pki, password_file: Path
) -> None:
    # The control: the same config and code path do offer it on loopback.
    config = _config(tmp_path, pki, password_file)
    _, ehlo, auth, mail, rcpt, _ = _converse(config, "127.0.0.1")
    assert any(line[4:].upper().startswith("AUTH PLAIN LOGIN") for line in ehlo), ehlo
    assert auth[0].startswith("235 2.7.0")
    assert mail[0].startswith("250 ")
    assert rcpt[0].startswith("250 ")
