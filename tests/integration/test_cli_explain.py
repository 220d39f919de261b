"""`posthorn explain ADDRESS` in a subprocess, against a running Posthorn's config and the
loopback DNS server of the relay tests: the MX walk (preferences, shuffled equal ones,
CNAME chains, implicit and null MX), aliases, lists and forward files, [routes], the TLS
policy, the retry timeline, and the exit codes. One test checks the explanation against
what the server then really does with a message."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.cli import run
from support.dns import DnsServer
from support.relay import Sink, send
from support.server import Server, env, posthorn_cmd, wait_log

MX1, MX2, MX3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
MX_HOSTS = (MX1, MX2, MX3)
SERVFAIL = ("broken.test",)
ZONE = f"""
example.test. 300 IN MX 20 mx2.example.test.
example.test. 300 IN MX 10 mx1.example.test.
mx1.example.test. 300 IN A {MX1}
mx2.example.test. 300 IN A {MX2}
mx2.example.test. 300 IN AAAA ::1
equal.test. 300 IN MX 10 a.equal.test.
equal.test. 300 IN MX 10 b.equal.test.
equal.test. 300 IN MX 20 c.equal.test.
a.equal.test. 300 IN A {MX1}
b.equal.test. 300 IN A {MX2}
c.equal.test. 300 IN A {MX3}
implicit.test. 300 IN A {MX3}
nullmx.test. 300 IN MX 0 .
nullmx.test. 300 IN A {MX1}
alias.test. 300 IN CNAME example.test.
chain.test. 300 IN MX 10 hop1.chain.test.
hop1.chain.test. 300 IN CNAME hop2.chain.test.
hop2.chain.test. 300 IN CNAME mx2.example.test.
dangling.test. 300 IN MX 10 gone.dangling.test.
dangling.test. 300 IN MX 20 mx1.example.test.
"""


def explain(server: Server, *args: str) -> tuple[int, str]:
    result = run(server, "explain", *args)
    assert not result.stderr, result.stderr
    return result.returncode, result.stdout


def explain_json(server: Server, address: str) -> tuple[int, dict[str, Any]]:
    code, out = explain(server, address, "--json")
    data: dict[str, Any] = json.loads(out)
    return code, data


def _plan(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    delivery = data["recipients"][index]["delivery"]
    assert delivery["kind"] == "relay"
    plan: dict[str, Any] = delivery["plan"]
    return plan


def test_mx_records_in_the_order_they_are_tried(sender: Callable[..., Server], port: int) -> None:
    server = sender()
    code, out = explain(server, "bob@example.test")
    assert code == 0
    # The seed's `host -t mx` walk: the records, then each host with its addresses.
    expected = textwrap.dedent(f"""\
        Explaining <bob@example.test>
          example.test is not a local domain: the mail is relayed
          (RCPT accepts it from relay.trusted_networks or after AUTH only)
        Final recipient:
          <bob@example.test>
            Relay to example.test
              Route: no [routes] entry: the MX records of example.test
              example.test IN MX 20 mx2.example.test
              example.test IN MX 10 mx1.example.test
              Hosts in the order they are tried:
                1. mx1.example.test (preference 10)
                     mx1.example.test IN A {MX1}, port {port}
                2. mx2.example.test (preference 20)
                     mx2.example.test IN AAAA ::1, port {port}
                     mx2.example.test IN A {MX2}, port {port}
              TLS: opportunistic (smtp_client.tls)
                STARTTLS when offered, certificate not checked (RFC 7435); else plain text
        """)
    assert out.startswith(expected)
    assert out.endswith("Result: deliverable\n")
    code, data = explain_json(server, "bob@example.test")
    plan = _plan(data)
    assert [h["name"] for h in plan["hosts"]] == ["mx1.example.test", "mx2.example.test"]
    assert plan["hosts"][1]["addresses"] == ["::1", MX2]  # IPv6 first, as tried
    assert plan["port"] == port
    assert (data["verdict"], plan["conclusion"]) == ("deliverable", "mx")


def test_equal_preferences_are_marked_as_shuffled(sender: Callable[..., Server]) -> None:
    code, out = explain(sender(), "bob@equal.test")
    assert code == 0
    assert "1. a.equal.test (preference 10; shuffled with b.equal.test)" in out
    assert "2. b.equal.test (preference 10; shuffled with a.equal.test)" in out
    assert "3. c.equal.test (preference 20)\n" in out


def test_cname_chains_of_the_domain_and_of_an_mx_host(sender: Callable[..., Server]) -> None:
    server = sender()
    code, out = explain(server, "bob@alias.test")
    assert code == 0
    assert "alias.test is an alias for example.test\n" in out
    assert "example.test IN MX 10 mx1.example.test" in out
    code, data = explain_json(server, "bob@chain.test")
    assert code == 0
    (host,) = _plan(data)["hosts"]
    assert host["cnames"] == [
        {"alias": "hop1.chain.test", "target": "hop2.chain.test"},
        {"alias": "hop2.chain.test", "target": "mx2.example.test"},
    ]
    assert host["addresses"] == ["::1", MX2]
    out = explain(server, "bob@chain.test")[1]
    assert "an MX should name a host, not an alias: RFC 2181 section 10.3" in out
    assert f"mx2.example.test IN A {MX2}" in out


def test_implicit_mx(sender: Callable[..., Server]) -> None:
    code, out = explain(sender(), "bob@implicit.test")
    assert code == 0
    assert "no MX records: implicit MX, implicit.test itself (RFC 5321 section 5.1)" in out
    assert "1. implicit.test\n" in out
    assert f"implicit.test IN A {MX3}" in out


@pytest.mark.parametrize(
    ("address", "code", "lines"),
    [
        (
            "bob@nullmx.test",
            68,
            [
                "nullmx.test IN MX 0 .",
                "null MX: nullmx.test accepts no mail (RFC 7505)",
                "Outcome: 556 5.1.10 Domain nullmx.test does not accept mail (null MX)",
                "Result: not deliverable: no such domain or host",
            ],
        ),
        (
            "bob@nowhere.test",
            68,
            [
                "nowhere.test does not exist (NXDOMAIN)",
                "Outcome: 550 5.1.2 Domain nowhere.test not found (NXDOMAIN)",
            ],
        ),
        (
            "bob@broken.test",
            75,
            [
                "Outcome: 451 4.4.3 DNS lookup for broken.test failed: server failure (SERVFAIL)",
                "Result: not deliverable now: temporary failure, it would be retried",
                "Retries (queue.retry = 'fast'):",
            ],
        ),
        (
            "nobody@sender.test",
            67,
            [
                "RCPT TO is refused: 550 5.1.1 <nobody@sender.test>: Recipient address "
                "rejected: User unknown",
                "Result: not deliverable: no such user",
            ],
        ),
    ],
)
def test_undeliverable_addresses_and_exit_codes(
    sender: Callable[..., Server], address: str, code: int, lines: list[str]
) -> None:
    server = sender(local="accept_any_local_user = false\n")
    got, out = explain(server, address)
    assert got == code, out
    for line in lines:
        assert line in out, out
    if code != 75:
        assert "Retries" not in out  # nothing is retried after a permanent failure


def test_a_host_without_address_is_passed_over(sender: Callable[..., Server]) -> None:
    code, out = explain(sender(), "bob@dangling.test")
    assert code == 0  # the second MX has an address
    assert "1. gone.dangling.test (preference 10)" in out
    assert "not tried: 550 5.4.4 Host gone.dangling.test not found" in out
    assert f"mx1.example.test IN A {MX1}" in out


def test_aliases_lists_and_forward_files(sender: Callable[..., Server], tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text(
        "# the team\nstaff: alice, bob, carol@example.test\nowner-staff: alice\n"
        'tickets: "|/usr/bin/ticket --queue support"\n'
    )
    server = sender(
        f'[aliases]\nfile = "{aliases}"\n',
        local='users = ["alice", "bob"]\naccept_any_local_user = false\n',
    )
    forward = server.data_dir / "mail" / "bob" / "forward"
    forward.parent.mkdir(parents=True)
    forward.write_text("bob@equal.test, \\bob\n")
    forward.chmod(0o600)
    code, out = explain(server, "staff", "--from", "dave")  # qualified: dave@sender.test
    assert code == 0, out
    assert f"<staff@sender.test>: alias ({aliases} line 2): alice, bob, carol@example.test" in out
    assert "its copies go out from <owner-staff@sender.test> (owner- alias)" in out
    assert f"<bob@sender.test>: forward file ({forward}): bob@equal.test, \\bob" in out
    assert "Final recipients (4):" in out
    maildir = server.data_dir / "mail" / "alice" / "Maildir"
    assert f"local delivery to alice: maildir {maildir}" in out
    result = run(server, "explain", "staff", "--from", "dave@sender.test", "--json")
    data = json.loads(result.stdout)
    finals = {r["address"]: r for r in data["recipients"]}
    assert list(finals) == [
        "alice@sender.test",
        "bob@equal.test",
        "bob@sender.test",
        "carol@example.test",
    ]
    assert finals["bob@equal.test"]["via"] == ["staff@sender.test", "bob@sender.test"]
    assert finals["bob@equal.test"]["sender"] == "owner-staff@sender.test"
    assert finals["bob@equal.test"]["delivery"]["plan"]["hosts"][0]["name"] == "a.equal.test"
    assert finals["bob@sender.test"]["delivery"]["kind"] == "mailbox"
    # Pipes are off by default: the alias exists, its target is refused (as at intake).
    code, out = explain(server, "tickets@sender.test")
    assert code == 69
    assert "tickets@sender.test>: alias" in out
    assert "fails: 550 5.7.1 pipe delivery is disabled in this mail system" in out


def test_alias_loop(sender: Callable[..., Server], tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text("a: b\nb: a\n")
    server = sender(f'[aliases]\nfile = "{aliases}"\n')
    code, out = explain(server, "a@sender.test")
    assert code == 69
    assert "via <a@sender.test> -> <b@sender.test>" in out
    assert "fails: 554 5.4.6 <a@sender.test>: alias or forward loop" in out


def test_routes_tls_policy_and_credentials(sender: Callable[..., Server], dns: DnsServer) -> None:
    server = sender(
        textwrap.dedent("""\
            tls = "required"
            tls_policy = { "example.test" = "verify" }
            credentials = { "smart.test" = "relayuser:secret" }
            [routes]
            "relay.test" = "smtp:[127.0.0.5]:2526"
            "*" = "smtp:[smart.test]:587"
            """)
    )
    dns.add("smart.test. 300 IN A 127.0.0.6\n")
    code, out = explain(server, "bob@relay.test")
    assert code == 0
    assert "Route: routes.relay.test = [127.0.0.5]:2526 (a relay host, no MX lookup)" in out
    assert "127.0.0.5 IN A 127.0.0.5, port 2526" in out
    assert "TLS: required (smtp_client.tls)" in out
    assert not any(name == "relay.test" for name, _ in dns.queries)  # no MX lookup
    code, out = explain(server, "bob@example.test")
    assert "Route: routes.* = [smart.test]:587 (a relay host, no MX lookup)" in out
    assert "smart.test IN A 127.0.0.6, port 587" in out
    assert "TLS: verify (smtp_client.tls_policy.example.test)" in out
    assert "AUTH as relayuser (smtp_client.credentials.smart.test), only over TLS" in out
    assert "secret" not in out


def test_retry_timeline(sender: Callable[..., Server]) -> None:
    server = sender(
        queue="retry_delays = [600.0, 3600.0]\nmax_queue_lifetime = 14400.0\n"
        "delay_warning = 3000.0\n"
    )
    _, data = explain_json(server, "bob@example.test")
    timeline = data["timeline"]
    # The runner's rules: retry 10 min after the first failure, then every hour; warn
    # with the first failure after 50 min; bounce with the first failure after 4 h.
    assert timeline["attempts"] == [0.0, 600.0, 4200.0, 7800.0, 11400.0, 15000.0]
    assert (timeline["warn_at"], timeline["give_up_at"]) == (4200.0, 15000.0)
    out = explain(server, "bob@example.test")[1]
    assert "Retries (queue.retry = 'fast with queue.retry_delays'):" in out
    assert "a deferred delivery is tried again after 10m, then every 1h" in out
    assert "attempts at +0, +10m, +1h10m, +2h10m, +3h10m, +4h10m\n" in out
    assert "delay warning to the sender at +1h10m (the first failed attempt after 50m)" in out
    assert "bounced to the sender at +4h10m (the first failed attempt after 4h)" in out


def test_percent_hack_and_bad_address(sender: Callable[..., Server]) -> None:
    server = sender()
    code, out = explain(server, "bob%example.test@sender.test")
    assert code == 0
    assert "the address names <bob@example.test> (resolved as at RCPT)" in out
    assert "Relay to example.test" in out
    result = run(server, "explain", "bob@@example")
    assert result.returncode == 64
    assert result.stderr.startswith("posthorn explain: ")


def test_explanation_matches_what_the_server_does(
    sender: Callable[..., Server], sinks: Callable[..., Sink]
) -> None:
    # The first MX (mx1) is down; explain lists mx2 next, and the server delivers there.
    sinks(MX2)
    server = sender()
    _, data = explain_json(server, "bob@example.test")
    first, second = _plan(data)["hosts"]
    assert (first["name"], second["name"]) == ("mx1.example.test", "mx2.example.test")
    send(server, "alice@sender.test", ["bob@example.test"], b"Subject: x\r\n\r\nhi\r\n")
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert f"relay=mx2.example.test[{MX2}]" in line
    assert wait_log(server, rf"mx1.example.test\[{MX1}\]")


def test_help() -> None:
    result = subprocess.run(
        posthorn_cmd("explain", "--help"), capture_output=True, text=True, env=env(), timeout=60
    )
    assert result.returncode == 0
    assert "ADDRESS" in result.stdout
    assert "68 no such domain" in " ".join(result.stdout.split())
