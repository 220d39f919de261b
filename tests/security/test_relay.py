"""Relay control: the classic tricks, each refused from an untrusted client and allowed
(to its real destination) after AUTH; local mail keeps flowing."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable

import pytest

from posthorn.address import Address
from posthorn.routing.relay import destination
from support.server import Server
from support.tlsauth import Pki

PASSWORD = "correct horse battery staple"

# (recipient as sent, SMTPUTF8 needed, the destination it really names)
TRICKS = [
    pytest.param("carol@example.net", False, "carol@example.net", id="plain-remote"),
    pytest.param("carol%example.net@mx.test", False, "carol@example.net", id="percent-hack"),
    pytest.param("carol%example.net@localhost", False, "carol@example.net", id="percent-hack-2"),
    pytest.param("a%b%example.net@mx.test", False, "a%b@example.net", id="percent-nested"),
    pytest.param("example.net!carol@mx.test", False, "carol@example.net", id="bang-path"),
    pytest.param('"carol@example.net"@mx.test', False, "carol@example.net", id="quoted-at"),
    pytest.param('"carol%example.net"@mx.test', False, "carol@example.net", id="quoted-pct"),
    pytest.param("@mx.test:carol@example.net", False, "carol@example.net", id="source-route"),
    pytest.param("@mx.test,@localhost:carol@example.net", False, "carol@example.net", id="adl"),
    pytest.param("carol@[192.0.2.1]", False, "carol@[192.0.2.1]", id="ipv4-literal"),
    pytest.param("carol@[IPv6:2001:db8::1]", False, "carol@[IPv6:2001:db8::1]", id="v6-literal"),
    pytest.param("carol@[127.0.0.1]", False, "carol@[127.0.0.1]", id="own-ip-literal"),
    pytest.param('"carol%[192.0.2.1]"@mx.test', False, "carol@[192.0.2.1]", id="pct-literal"),
    pytest.param("carol@example.net.", False, "carol@example.net", id="trailing-dot"),
    pytest.param(
        '"carol%example.net."@mx.test', False, "carol@example.net", id="pct-trailing-dot"
    ),
    pytest.param("carol@EXAMPLE.Net", False, "carol@EXAMPLE.Net", id="case"),
    pytest.param("carol%EXAMPLE.NET@MX.TEST", False, "carol@EXAMPLE.NET", id="case-pct"),
    pytest.param("carol@bücher.example", True, "carol@bücher.example", id="idn-u-label"),
    pytest.param("carol@xn--bcher-kva.example", False, "carol@xn--bcher-kva.example", id="idn-a"),
    pytest.param("carol%bücher.example@mx.test", True, "carol@bücher.example", id="idn-pct"),
    pytest.param("carol@ｅｘａｍｐｌｅ.net", True, "carol@ｅｘａｍｐｌｅ.net", id="idn-fullwidth"),
]

# Addresses that look odd but stay local: accepted from anyone.
LOCAL = [
    "bob@mx.test",
    "bob@MX.TEST",
    "bob@mx.test.",
    "bob%mx.test@localhost",
    "mx.test!bob@localhost",
    '"bob"@mx.test',
    "@example.net:bob@mx.test",
    "Postmaster",
]


def _smtputf8_client(client: smtplib.SMTP, sender: str, rcpt: str, utf8: bool) -> int:
    code, _ = client.mail(sender, ["SMTPUTF8"] if utf8 else [])
    assert code == 250
    client.putcmd("RCPT", f"TO:<{rcpt}>")
    code, _ = client.getreply()
    client.rset()
    return code


@pytest.mark.parametrize(("rcpt", "utf8", "real"), TRICKS)
def test_destination_sees_through_the_trick(rcpt: str, utf8: bool, real: str) -> None:
    from posthorn.smtp.commands import parse_path

    local = {"mx.test", "localhost"}
    address = Address("Postmaster", "") if rcpt == "Postmaster" else parse_path(rcpt, utf8=True)
    found = destination(address, lambda a: not a.domain or a.domain_key in local)
    assert str(found) == real


def test_relay_tricks_refused_unauthenticated_allowed_after_auth(
    secure_server: Callable[..., Server], pki: Pki
) -> None:
    # Many refusals in one session: keep the error limit and tarpit out of the way.
    server = secure_server("[limits]\nmax_errors = 100\ntarpit_delay = 0\n")
    tricks = [(p.values[0], p.values[1], p.values[2]) for p in TRICKS]
    with server.smtp() as client:
        client.ehlo()
        for rcpt, utf8, _ in tricks:
            code = _smtputf8_client(client, "mallory@example.org", str(rcpt), bool(utf8))
            assert code == 554, f"{rcpt} was not refused ({code})"
    assert server.log().count("relay denied for") == len(tricks)
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="c.test", timeout=10) as client:
        client.ehlo()
        client.starttls(context=pki.client_context())
        client.ehlo()
        client.login("alice", PASSWORD)
        for rcpt, utf8, _ in tricks:
            code = _smtputf8_client(client, "alice@example.org", str(rcpt), bool(utf8))
            assert code == 250, f"{rcpt} refused after AUTH ({code})"
        # One message to all of them: the queue holds the real destinations.
        client.mail("alice@example.org", ["SMTPUTF8"])
        for rcpt, _, _ in tricks:
            client.putcmd("RCPT", f"TO:<{rcpt}>")
            assert client.getreply()[0] == 250
        assert client.data(b"Subject: relay\r\n\r\nx\r\n")[0] == 250
    result = server.cli("queue", "list", "--json")
    (message,) = json.loads(result.stdout)
    queued = [r["address"] for r in message["recipients"]]
    # Expansion at intake delivers once per real destination (domains compare as A-labels).
    expected: dict[str, str] = {}
    for _, _, real in tricks:
        expected.setdefault(Address.parse(str(real), utf8=True).key(), str(real))
    assert queued == list(expected.values())


def test_odd_but_local_addresses_are_accepted_from_anyone(
    secure_server: Callable[..., Server],
) -> None:
    server = secure_server()
    with server.smtp() as client:
        client.ehlo()
        for rcpt in LOCAL:
            assert _smtputf8_client(client, "mallory@example.org", rcpt, False) == 250, rcpt


def test_empty_trusted_networks_trusts_no_one_and_loopback_is_default(
    secure_server: Callable[..., Server], make_server: Callable[..., Server]
) -> None:
    untrusted = secure_server()
    with untrusted.smtp() as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt("carol@example.net")[0] == 554
    default = make_server()  # relay.trusted_networks at its default: loopback
    with default.smtp() as client:
        client.ehlo()
        client.mail("a@example.org")
        assert client.rcpt("carol@example.net")[0] == 250
