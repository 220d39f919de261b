"""Development certificates: a self-signed certificate and key for STARTTLS testing.

Owns: creating an EC P-256 key and a self-signed X.509 certificate for a host name (with
the name, `localhost` and the loopback addresses as subject alternative names), written
as PEM with the key file mode 0600. Uses `cryptography`. Does not own loading them
(`receive/tls.py`). Not for production: real servers need a certificate a CA signed.

Raises `OSError` when the files cannot be written.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["write_certificate", "write_selfsigned"]


def _names(hostname: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        names.append(x509.DNSName("localhost"))
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    return names


def write_selfsigned(hostname: str, cert: Path, key: Path, *, days: int = 825) -> None:
    """Write a new key to `key` and a certificate for `hostname` to `cert`, valid for
    `days` from now (and from five minutes ago, for a client whose clock is behind)."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    write_certificate(hostname, cert, key, start, end)


def write_certificate(
    hostname: str, cert: Path, key: Path, start: datetime.datetime, end: datetime.datetime
) -> None:
    """Write a new key to `key` and a certificate for `hostname` valid from `start` to
    `end` to `cert` (tests also make ones that are expired or not valid yet)."""
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_names(hostname)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key.parent.mkdir(parents=True, exist_ok=True)
    cert.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(key_pem)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
