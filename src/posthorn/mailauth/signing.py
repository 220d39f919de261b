"""Outbound DKIM signing (RFC 6376) per From domain, and DKIM key generation.

Owns: loading the configured private keys at start-up (any PEM that `cryptography`
reads; handed to dkimpy as PKCS#1), choosing the key by the domain of the From field
(DMARC alignment needs d= to match it), signing with relaxed/relaxed canonicalisation
(section 3.4.2; survives the header rewrapping of later hops) and the header list of
`[dkim] headers`, and creating a new key with its DNS TXT record (`posthorn dkim
keygen`). Signing runs in a worker thread (dkimpy's RSA is pure Python). Does not own
when to sign (intake signs mail from trusted or authenticated clients).

Raises `DkimKeyError` (a `ValueError`) at start-up for a key that cannot be loaded;
signing failures are logged and the message goes out unsigned.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from posthorn import log
from posthorn.address import AddressError, normalise_domain
from posthorn.config import DkimConfig
from posthorn.mailauth.dmarc import from_domain
from posthorn.message.headers import header_block

__all__ = ["DkimKeyError", "DkimSigner", "dns_record", "generate_key"]

_log = log.get("dkim")


class DkimKeyError(ValueError):
    """A configured DKIM key cannot be used."""


def _pkcs1(pem: bytes, origin: str) -> bytes:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimKeyError(f"dkim: {origin}: not a PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError(f"dkim: {origin}: only RSA keys are supported")
    if key.key_size < 1024:
        raise DkimKeyError(f"dkim: {origin}: RSA keys need at least 1024 bits (RFC 8301)")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class DkimSigner:
    def __init__(self, config: DkimConfig, data_dir: str = "") -> None:
        self.selector = config.selector
        self.headers = tuple(h.encode("ascii").lower() for h in config.headers)
        if b"from" not in self.headers:
            self.headers = (b"from", *self.headers)
        self.keys: dict[str, tuple[str, bytes]] = {}
        for domain, path in config.keys.items():
            file = Path(path.replace("{data_dir}", data_dir))
            try:
                pem = file.read_bytes()
                key = normalise_domain(domain)
            except (OSError, AddressError) as exc:
                raise DkimKeyError(f"dkim.keys.{domain}: {exc}") from exc
            selector = config.selectors.get(domain, config.selector)
            self.keys[key] = (selector, _pkcs1(pem, str(file)))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature field for `message` (CRLF), or b"" when no key applies."""
        domain = from_domain(header_block(message))
        if domain is None:
            return b""
        try:
            domain = normalise_domain(domain)  # d= is written with A-labels
        except AddressError:
            return b""
        entry = self.keys.get(domain)
        if entry is None:
            return b""
        selector, key = entry
        try:
            field: bytes = dkim.sign(
                message,
                selector.encode("ascii"),
                domain.encode("ascii"),
                key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=list(self.headers),
            )
        except dkim.DKIMException as exc:
            _log.error("cannot sign for %s: %s", domain, exc)
            return b""
        return field if field.endswith(b"\r\n") else field + b"\r\n"

    async def __call__(self, message: bytes) -> bytes:
        if not self.keys:
            return b""
        return await asyncio.to_thread(self.signature, message)


def dns_record(public_der: bytes) -> str:
    """The TXT record text of a public key (RFC 6376 section 3.6.1)."""
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode("ascii")


def generate_key(path: Path, bits: int = 2048) -> str:
    """Write a new RSA key to `path` (mode 0600); return its TXT record text."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return dns_record(der)
