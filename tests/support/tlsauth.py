"""TLS and AUTH helpers for tests: a development certificate and users, made with the
real `posthorn tls selfsigned` and `posthorn passwd` commands, and client contexts that
trust that certificate."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.server import env, posthorn_cmd


@dataclass(frozen=True)
class Pki:
    cert: Path
    key: Path

    def config(self) -> str:
        return f'[tls]\ncert = "{self.cert}"\nkey = "{self.key}"\n'

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this certificate and checks the name."""
        context = ssl.create_default_context(cafile=str(self.cert))
        return context


def make_pki(root: Path, hostname: str = "mx.test") -> Pki:
    cert, key = root / "cert.pem", root / "key.pem"
    cmd = posthorn_cmd(
        "tls", "selfsigned", "--cert", str(cert), "--key", str(key), "--hostname", hostname
    )
    subprocess.run(cmd, check=True, capture_output=True, env=env(), timeout=60)
    return Pki(cert, key)


def set_password(
    password_file: Path, user: str, password: str
) -> subprocess.CompletedProcess[bytes]:
    cmd = posthorn_cmd("passwd", user, "--file", str(password_file))
    return subprocess.run(
        cmd, input=password.encode() + b"\n", capture_output=True, env=env(), timeout=60
    )
