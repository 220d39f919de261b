"""The pure parts of the security work, in memory: DMARC, Authentication-Results,
passwords, per-client limits with an injected clock, the TLS context."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from posthorn.config import AuthConfig, LimitsConfig, TlsConfig
from posthorn.mailauth.dkim_check import DkimResult
from posthorn.mailauth.dmarc import DmarcResult, from_domain, org_domain, parse_record
from posthorn.mailauth.results import authentication_results, strip_forged
from posthorn.mailauth.spf_check import SpfResult
from posthorn.passwords import PasswordFile, PasswordFileError, hash_password, verify
from posthorn.receive.limits import ClientLimits
from posthorn.receive.tls import TlsConfigError, server_context
from support.tlsauth import Pki


def test_dmarc_record_parsing() -> None:
    record = parse_record("v=DMARC1; p=Reject; sp=none; adkim=s; pct=50; rua=mailto:x@y")
    assert record is not None
    assert (record.p, record.sp, record.adkim, record.aspf, record.pct) == (
        "reject", "none", "s", "r", 50,
    )  # fmt: skip
    assert parse_record("v=DMARC1; p=bogus") is None
    assert parse_record("v=spf1 -all") is None
    assert parse_record("p=reject") is None


def test_org_domain_uses_the_public_suffix_list() -> None:
    assert org_domain("mail.example.co.uk") == "example.co.uk"
    assert org_domain("a.b.example.com.") == "example.com"
    assert org_domain("mx.example.test") == "example.test"


def test_from_domain_needs_exactly_one() -> None:
    assert from_domain(b"From: Alice <alice@Example.TEST>\r\n") == "example.test"
    assert from_domain(b"From: a@x.test\r\nFrom: b@x.test\r\n") is None
    assert from_domain(b"From: a@x.test, b@y.test\r\n") is None
    assert from_domain(b"Subject: none\r\n") is None
    assert from_domain(b"From: \xff\xfe<<<\r\n") is None


def test_authentication_results_syntax() -> None:
    field = authentication_results(
        "mx.test",
        SpfResult("pass", "a@example.test", "example.test", "mailfrom"),
        [DkimResult("fail", "example.test", "sel", "abcdEFGH", "body hash (mismatch)")],
        DmarcResult("fail", "example.test", "reject"),
    )
    assert field == (
        b"Authentication-Results: mx.test;\r\n"
        b"\tspf=pass smtp.mailfrom=a@example.test;\r\n"
        b"\tdkim=fail (body hash mismatch) header.d=example.test header.s=sel"
        b" header.b=abcdEFGH;\r\n"
        b"\tdmarc=fail (p=reject) header.from=example.test\r\n"
    )
    assert authentication_results("mx.test", None, [], None).endswith(b"dkim=none\r\n")


def test_strip_forged_keeps_other_ids_and_the_body() -> None:
    content = (
        b"Authentication-Results: MX.TEST; dkim=pass\r\n"
        b"Authentication-Results: mx.test (forged);\r\n\tspf=pass\r\n"
        b"Authentication-Results: other.test; spf=pass\r\n"
        b"Subject: s\r\n\r\nAuthentication-Results: mx.test; body text stays\r\n"
    )
    assert strip_forged(content, "mx.test") == (
        b"Authentication-Results: other.test; spf=pass\r\n"
        b"Subject: s\r\n\r\nAuthentication-Results: mx.test; body text stays\r\n"
    )


def test_password_hash_and_file(tmp_path: Path) -> None:
    hashed = hash_password("pw", ln=4)
    assert verify("pw", hashed)
    assert not verify("pW", hashed)
    with pytest.raises(PasswordFileError):
        verify("pw", "$plain$pw")
    file = PasswordFile(tmp_path / "passwd")
    assert not file.check("alice", "pw")  # no file: nobody
    file.set("alice", "pw")
    assert file.check("alice", "pw")
    assert not file.check("alice", "other")
    assert not file.check("bob", "pw")
    (tmp_path / "passwd").write_text("alice:not-a-hash\n")
    with pytest.raises(PasswordFileError, match="passwd:1"):
        file.check("alice", "pw")


def test_client_limits_with_a_clock() -> None:
    now = [1000.0]
    limits = ClientLimits(
        LimitsConfig(messages_per_minute=2, max_connections_per_ip=1),
        AuthConfig(max_failures=2, failure_window=60, failure_delay=1.5),
        max_connections=10,
        clock=lambda: now[0],
    )
    assert limits.mail("192.0.2.1") is None
    assert limits.mail("192.0.2.1") is None
    refused = limits.mail("192.0.2.1")
    assert refused is not None
    assert refused.code == 450
    assert limits.mail("192.0.2.2") is None  # per client
    now[0] += 61
    assert limits.mail("192.0.2.1") is None  # a minute later
    assert limits.auth_failed("192.0.2.1") == 1.5
    assert limits.auth_failed("192.0.2.1") == 3.0
    assert limits.auth_blocked("192.0.2.1")
    now[0] += 61
    assert not limits.auth_blocked("192.0.2.1")
    assert limits.connect("192.0.2.1", "mx") is None
    second = limits.connect("192.0.2.1", "mx")
    assert second is not None
    assert second.code == 421
    limits.disconnect("192.0.2.1")
    assert limits.connect("192.0.2.1", "mx") is None


def test_tls_context_is_tls12_or_later(pki: Pki, tmp_path: Path) -> None:
    assert server_context(TlsConfig()) is None
    context = server_context(TlsConfig(cert=str(pki.cert), key=str(pki.key)))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    strict = server_context(TlsConfig(cert=str(pki.cert), key=str(pki.key), min_version="TLSv1.3"))
    assert strict is not None
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(TlsConfigError):
        server_context(TlsConfig(cert=str(tmp_path / "missing.pem"), key=str(pki.key)))
    with pytest.raises(ValueError, match="together"):
        TlsConfig(cert=str(pki.cert))
