"""Fixtures for the security tests: a certificate, a user, a server with both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.server import Server, free_port
from support.tlsauth import Pki, make_pki, set_password

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "passwd"
    result = set_password(path, "alice", PASSWORD)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def secure_server(
    make_server: Callable[..., Server], pki: Pki, password_file: Path
) -> Callable[..., Server]:
    """Start a server with TLS and the AUTH user alice, holding what it accepts; extra
    config text is appended.

    By default no network is trusted, so relaying needs AUTH.
    """

    def make(extra: str = "", *, trusted: str = "[]", auth: str = "", name: str = "") -> Server:
        text = (
            '[server]\nhostname = "mx.test"\n'
            + pki.config()
            + f'[auth]\npassword_file = "{password_file}"\n{auth}'
            + f"[relay]\ntrusted_networks = {trusted}\n"
            + '[mailauth]\nspf = "none"\ndkim = "none"\ndmarc = "none"\n'
            + extra
        )
        return make_server(text, "--hold", name=name)

    return make


@pytest.fixture
def ports() -> Callable[[], int]:
    return free_port
