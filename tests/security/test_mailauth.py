"""Inbound SPF, DKIM and DMARC with a loopback DNS server, written as
Authentication-Results (RFC 8601); actions none/tag/reject; outbound DKIM signing with a
key from `posthorn dkim keygen`."""

from __future__ import annotations

import email.parser
import email.policy
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import dns.resolver
import pytest

from posthorn.config import DnsConfig
from posthorn.mailauth.lookup import make_sync_resolver, txt_records
from support.dns import DnsServer, dns_server
from support.server import Server, env, posthorn_cmd

BASE_ZONE = """
example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"
bad.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.bad.test. 300 IN TXT "v=DMARC1; p=reject; sp=none"
soft.test. 300 IN TXT "v=spf1 ~all"
_dmarc.soft.test. 300 IN TXT "v=DMARC1; p=quarantine"
"""


def keygen(domain: str, selector: str, key: Path) -> str:
    """Run the real `posthorn dkim keygen`; return its zone line."""
    result = subprocess.run(
        posthorn_cmd("dkim", "keygen", domain, "--selector", selector, "--key", str(key)),
        capture_output=True, env=env(), timeout=60, check=True,
    )  # fmt: skip
    (line,) = [x for x in result.stdout.decode().splitlines() if " IN TXT " in x]
    return line


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    key = tmp_path_factory.mktemp("dkim") / "example.test.pem"
    return key, keygen("example.test", "sel", key)


@pytest.fixture
def dns(dkim_key: tuple[Path, str]) -> Iterator[DnsServer]:
    with dns_server(BASE_ZONE + dkim_key[1] + "\n") as server:
        yield server


@pytest.fixture
def checking_server(make_server: Callable[..., Server], dns: DnsServer) -> Callable[..., Server]:
    def make(spf: str = "tag", dkim_: str = "tag", dmarc: str = "tag", extra: str = "") -> Server:
        return make_server(
            "[relay]\ntrusted_networks = []\n"
            f'[dns]\nnameservers = ["{dns.address}"]\ntimeout = 3\n'
            f'[mailauth]\nspf = "{spf}"\ndkim = "{dkim_}"\ndmarc = "{dmarc}"\n' + extra
        )

    return make


def sign(message: bytes, key: Path, domain: str = "example.test", selector: str = "sel") -> bytes:
    signature: bytes = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        key.read_bytes(),
        include_headers=[b"from", b"subject"],
    )
    return signature + message


def message(sender: str, subject: str = "check") -> bytes:
    return f"From: {sender}\r\nTo: bob@mx.test\r\nSubject: {subject}\r\n\r\nHello.\r\n".encode()


def delivered_headers(server: Server, count: int = 1) -> email.message.Message:
    path = server.wait_delivered("bob", count)[count - 1]
    return email.parser.BytesParser(policy=email.policy.SMTP).parsebytes(path.read_bytes())


def send(server: Server, sender: str, content: bytes) -> tuple[int, bytes]:
    with server.smtp() as client:
        client.ehlo()
        client.mail(sender)
        client.rcpt("bob@mx.test")
        return client.data(content)


def test_keygen_writes_private_key_and_publishes_record(dkim_key: tuple[Path, str]) -> None:
    key, line = dkim_key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert line.startswith('sel._domainkey.example.test. 3600 IN TXT "v=DKIM1; k=rsa; p=')
    again = subprocess.run(
        posthorn_cmd("dkim", "keygen", "example.test", "--key", str(key)),
        capture_output=True, env=env(), timeout=60,
    )  # fmt: skip
    assert again.returncode != 0  # never overwrites a key
    assert b"exists" in again.stderr


def test_lookups_go_to_the_loopback_server(dns: DnsServer) -> None:
    resolver = make_sync_resolver(DnsConfig(nameservers=(dns.address,), timeout=2))
    assert txt_records(resolver, "bad.test") == [b"v=spf1 ip4:192.0.2.1 -all"]
    assert ("bad.test", "TXT") in dns.queries


def test_all_pass(
    checking_server: Callable[..., Server], dkim_key: tuple[Path, str], dns: DnsServer
) -> None:
    server = checking_server()
    code, _ = send(server, "alice@example.test", sign(message("alice@example.test"), dkim_key[0]))
    assert code == 250
    results = str(delivered_headers(server)["Authentication-Results"])
    assert results.startswith("mx.test;")
    assert "spf=pass" in results
    assert "smtp.mailfrom=alice@example.test" in results
    assert "dkim=pass" in results
    assert "header.d=example.test header.s=sel" in results
    assert "dmarc=pass" in results
    assert ("sel._domainkey.example.test", "TXT") in dns.queries
    assert ("_dmarc.example.test", "TXT") in dns.queries


def test_failures_are_tagged(
    checking_server: Callable[..., Server], dkim_key: tuple[Path, str]
) -> None:
    server = checking_server()
    tampered = sign(message("alice@example.test"), dkim_key[0]).replace(b"Hello.", b"Hullo.")
    assert send(server, "bob@bad.test", tampered)[0] == 250
    results = str(delivered_headers(server)["Authentication-Results"])
    assert "spf=fail" in results
    assert "smtp.mailfrom=bob@bad.test" in results
    assert "dkim=fail" in results
    assert "dmarc=fail (p=reject) header.from=example.test" in results


@pytest.mark.parametrize(
    ("actions", "sender", "from_", "tamper", "who"),
    [
        (("reject", "none", "none"), "bob@bad.test", "bob@bad.test", False, "SPF"),
        (("none", "reject", "none"), "alice@example.test", "alice@example.test", True, "DKIM"),
        (("tag", "tag", "reject"), "bob@bad.test", "alice@example.test", False, "DMARC"),
    ],
)
def test_reject_actions_give_550_571(
    checking_server: Callable[..., Server],
    dkim_key: tuple[Path, str],
    actions: tuple[str, str, str],
    sender: str,
    from_: str,
    tamper: bool,
    who: str,
) -> None:
    server = checking_server(*actions)
    content = message(from_)
    if tamper:
        content = sign(content, dkim_key[0]).replace(b"Hello.", b"Hullo.")
    code, text = send(server, sender, content)
    assert code == 550
    assert text.startswith(b"5.7.1")
    assert who.encode() in text
    assert f"rejected by {who} checks" in server.log()


def test_dmarc_quarantine_and_none_are_not_rejected(
    checking_server: Callable[..., Server],
) -> None:
    server = checking_server(dmarc="reject")
    assert send(server, "carol@soft.test", message("carol@soft.test"))[0] == 250
    results = str(delivered_headers(server)["Authentication-Results"])
    assert "spf=softfail" in results
    assert "dmarc=fail (p=quarantine)" in results


def test_forged_results_with_our_id_are_removed(checking_server: Callable[..., Server]) -> None:
    server = checking_server()
    forged = (
        b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=ceo@example.test;\r\n"
        b"\tdkim=pass header.d=example.test\r\n"
        b"Authentication-Results: other.example; spf=pass\r\n"
    ) + message("bob@bad.test")
    assert send(server, "bob@bad.test", forged)[0] == 250
    parsed = delivered_headers(server)
    values = [str(v) for v in parsed.get_all("Authentication-Results") or []]
    assert len(values) == 2
    assert values[0].startswith("mx.test;")
    assert "spf=fail" in values[0]
    assert values[1].startswith("other.example;")


def test_dns_trouble_is_temperror_not_rejection(
    checking_server: Callable[..., Server], dns: DnsServer
) -> None:
    dns.resolver.servfail.add("broken.test")
    server = checking_server(spf="reject")
    assert send(server, "x@broken.test", message("x@broken.test"))[0] == 250
    results = str(delivered_headers(server)["Authentication-Results"])
    assert "spf=temperror" in results


def test_trusted_clients_are_not_checked(
    make_server: Callable[..., Server], dns: DnsServer
) -> None:
    server = make_server(f'[dns]\nnameservers = ["{dns.address}"]\n')  # loopback trusted
    assert send(server, "bob@bad.test", message("bob@bad.test"))[0] == 250
    assert delivered_headers(server)["Authentication-Results"] is None
    assert dns.queries == []


def test_outbound_mail_is_dkim_signed(
    make_server: Callable[..., Server], dkim_key: tuple[Path, str], dns: DnsServer
) -> None:
    key, _ = dkim_key
    server = make_server(f'[dkim]\nselector = "sel"\nkeys = {{ "example.test" = "{key}" }}\n')
    assert send(server, "alice@example.test", message("alice@example.test"))[0] == 250
    assert send(server, "bob@elsewhere.test", message("bob@elsewhere.test"))[0] == 250
    first, second = server.wait_delivered("bob", 2)
    signed = first.read_bytes()
    field = str(delivered_headers(server, 1)["DKIM-Signature"])
    tags = {k.strip(): v.strip() for k, _, v in (t.partition("=") for t in field.split(";"))}
    assert tags["a"] == "rsa-sha256"
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.test"
    assert tags["s"] == "sel"
    assert "message-id" in tags["h"].lower()  # the Message-ID intake added is signed
    assert b"DKIM-Signature" not in second.read_bytes()  # no key for that domain
    resolver = dns_resolver(dns)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        found = txt_records(resolver, name.decode().rstrip("."))
        return found[0] if found else None

    crlf = signed.replace(b"\n", b"\r\n")
    # The mailbox copy starts with Return-Path and Delivered-To, which are not signed.
    assert dkim.verify(crlf, dnsfunc=dnsfunc)
    assert not dkim.verify(crlf.replace(b"Hello.", b"Hullo."), dnsfunc=dnsfunc)


def dns_resolver(server: DnsServer) -> dns.resolver.Resolver:
    return make_sync_resolver(DnsConfig(nameservers=(server.address,), timeout=2))


@pytest.mark.parametrize(
    ("actions", "absent", "present", "unasked"),
    [
        (
            ("none", "tag", "tag"),
            ("spf=", "smtp.mailfrom="),
            ("dkim=pass", "dmarc=pass"),
            # No SPF record is looked up: not for MAIL FROM's domain, not for HELO's.
            {("example.test", "TXT"), ("client.test", "TXT")},
        ),
        # DMARC still verifies signatures for its alignment (RFC 7489 section 4.2), so the
        # selector may be asked for; the DKIM result itself is not reported.
        (("tag", "none", "tag"), ("dkim=", "header.s="), ("spf=pass", "dmarc=pass"), set()),
        (
            ("tag", "tag", "none"),
            ("dmarc=", "header.from="),
            ("spf=pass", "dkim=pass"),
            {("_dmarc.example.test", "TXT")},
        ),
    ],
    ids=["spf-none", "dkim-none", "dmarc-none"],
)
def test_action_none_skips_that_check(
    checking_server: Callable[..., Server],
    dkim_key: tuple[Path, str],
    dns: DnsServer,
    actions: tuple[str, str, str],
    absent: tuple[str, ...],
    present: tuple[str, ...],
    unasked: set[tuple[str, str]],
) -> None:
    server = checking_server(*actions)
    content = sign(message("alice@example.test"), dkim_key[0])
    assert send(server, "alice@example.test", content)[0] == 250
    (results,) = delivered_headers(server).get_all("Authentication-Results")
    for text in absent:
        assert text not in str(results), results
    for text in present:
        assert text in str(results), results
    assert not unasked & set(dns.queries), dns.queries


def test_all_none_adds_no_header_and_asks_no_dns(
    checking_server: Callable[..., Server], dkim_key: tuple[Path, str], dns: DnsServer
) -> None:
    server = checking_server("none", "none", "none")
    content = sign(message("bob@bad.test"), dkim_key[0]).replace(b"Hello.", b"Hullo.")
    # Everything here would fail (SPF -all for this client, a broken signature): unchecked.
    assert send(server, "bob@bad.test", content)[0] == 250
    assert delivered_headers(server).get_all("Authentication-Results") is None
    assert dns.queries == []
