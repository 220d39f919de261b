"""`posthorn config check` for the secrets the config names: the TLS certificate and key,
the DKIM signing keys, and the AUTH password file.

Owns: checking each of them the way the server will use it, with a message that says
what to fix: the certificate chain and key readable and in PEM, the key belonging to the
certificate, the certificate valid now (and not about to expire, and naming the host),
private keys not readable by everyone, and finally the server's own loaders
(`receive.tls.server_context`, `mailauth.signing.DkimSigner`, `passwords.parse`), so that
anything those would refuse at start-up or at the first AUTH is reported here too.
Reads files (with `cryptography`); changes nothing. Does not own the data directory,
aliases or other files (`check.py`).

Returns problems as values; raises nothing for what it finds.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from posthorn.config.problems import Level, Problem, error, readable_file, warning
from posthorn.config.resolve import password_file
from posthorn.config.schema import Config

__all__ = ["check_auth_passwords", "check_dkim", "check_tls"]

_EXPIRY_WARNING = datetime.timedelta(days=30)
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _private(path: str, what: str) -> list[Problem]:
    """A private key file must not be readable by everyone."""
    mode = Path(path).stat().st_mode
    if mode & stat.S_IROTH:
        return [error(f"{what} {path} is readable by everyone (mode {mode & 0o777:o}); chmod o-r")]
    return []


def _load_key(path: str, what: str) -> PrivateKeyTypes | Problem:
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except TypeError:
        return error(f"{what} {path} is encrypted; Posthorn needs it without a passphrase")
    except (ValueError, OSError) as exc:
        return error(f"{what} {path} is not a PEM private key ({exc})")


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(a.value) for a in common]
    return [str(n) for n in san.value.get_values_for_type(x509.DNSName)]


def _matches(hostname: str, pattern: str) -> bool:
    """RFC 6125 section 6.4.3: a wildcard stands for exactly one left-most label."""
    host, pattern = hostname.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return host == pattern


def _validity(cert: x509.Certificate, path: str, now: datetime.datetime) -> list[Problem]:
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if after < now:
        return [error(f"tls.cert {path} expired on {after:%Y-%m-%d}")]
    if before > now:
        return [error(f"tls.cert {path} is not valid before {before:%Y-%m-%d %H:%M} UTC")]
    if after - now < _EXPIRY_WARNING:
        return [
            warning(f"tls.cert {path} expires on {after:%Y-%m-%d}, in {(after - now).days} days")
        ]
    return []


def _certificate(config: Config, now: datetime.datetime) -> list[Problem]:
    """The chain in tls.cert against the key in tls.key."""
    tls = config.tls
    try:
        chain = x509.load_pem_x509_certificates(Path(tls.cert).read_bytes())
    except (ValueError, OSError) as exc:
        return [error(f"tls.cert {tls.cert} holds no PEM certificate ({exc})")]
    key = _load_key(tls.key, "tls.key")
    if isinstance(key, Problem):
        return [key]
    leaf = chain[0]  # the server's own certificate comes first, then its issuers
    if key.public_key().public_bytes(*_SPKI) != leaf.public_key().public_bytes(*_SPKI):
        return [error(f"tls.key {tls.key} does not belong to the certificate in {tls.cert}")]
    problems = _validity(leaf, tls.cert, now)
    names = _names(leaf)
    hostname = config.server.hostname
    if not any(_matches(hostname, n) for n in names):
        shown = ", ".join(names) or "none"
        problems.append(
            warning(f"tls.cert {tls.cert} does not name server.hostname {hostname} ({shown})")
        )
    return problems


def check_tls(config: Config, now: datetime.datetime | None = None) -> list[Problem]:
    from posthorn.receive.tls import TlsConfigError, server_context  # the server's loader

    tls, submission = config.tls, config.submission
    if not tls.cert:
        problems = []
        if submission.tls_listen:
            problems.append(error("submission.tls_listen needs tls.cert and tls.key"))
        if submission.listen:
            text = "submission.listen without tls.cert: no STARTTLS, so no client can AUTH"
            problems.append(warning(text))
        return problems
    missing = [
        p for p in (readable_file(tls.cert, "tls.cert"), readable_file(tls.key, "tls.key")) if p
    ]
    if missing:
        return missing
    problems = _private(tls.key, "tls.key")
    problems += _certificate(config, now or datetime.datetime.now(datetime.UTC))
    if not any(p.level is Level.ERROR for p in problems):
        try:
            server_context(tls)
        except TlsConfigError as exc:
            problems.append(error(str(exc)))
    return problems


def check_dkim(config: Config) -> list[Problem]:
    from posthorn.mailauth.signing import DkimKeyError, DkimSigner  # the signer's loader

    data_dir = config.server.data_dir
    problems: list[Problem] = []
    for domain, template in config.dkim.keys.items():
        path = template.replace("{data_dir}", data_dir)
        what = f"dkim.keys.{domain}"
        missing = readable_file(path, what)
        if missing is not None:
            problems.append(missing)
            continue
        problems += _private(path, what)
        try:
            DkimSigner(dataclasses.replace(config.dkim, keys={domain: template}), data_dir)
        except DkimKeyError as exc:
            problems.append(error(str(exc)))
    for domain in config.dkim.selectors:
        if domain not in config.dkim.keys:
            problems.append(warning(f"dkim.selectors.{domain}: no key for {domain} in dkim.keys"))
    return problems


def check_auth_passwords(config: Config) -> list[Problem]:
    from posthorn.passwords import PasswordFileError, parse

    path = password_file(config)
    submission = config.submission.listen or config.submission.tls_listen
    if not os.path.lexists(path):
        if submission:
            text = f"auth.password_file {path} does not exist: no one can AUTH to submit mail"
            return [warning(text + " (posthorn passwd USER)")]
        return []
    missing = readable_file(path, "auth.password_file")
    if missing is not None:
        return [missing]
    try:
        users = parse(Path(path).read_text(encoding="utf-8"), path)
    except (PasswordFileError, UnicodeDecodeError) as exc:
        return [error(f"auth.password_file: {exc}")]
    problems = []
    mode = Path(path).stat().st_mode
    if mode & stat.S_IROTH:
        # scrypt hashes resist guessing, but an offline attack needs only a copy.
        text = f"auth.password_file {path} is readable by everyone (mode {mode & 0o777:o})"
        problems.append(warning(text))
    if not users and submission:
        problems.append(warning(f"auth.password_file {path} has no users"))
    return problems
