"""Relaying through MX records: a real DNS server on loopback, smtp-sink and Posthorn
receivers on 127.0.0.2, 127.0.0.3, ... (all on one port, as MX hosts are all on port 25),
and a sending Posthorn that looks them up and connects."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable

import pytest

from support.cli import queue_list
from support.dns import DnsServer
from support.relay import Sink, send
from support.server import Server, wait_log

MX1, MX2, MX3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
ZONE = f"""
example.test. 300 IN MX 10 mx1.example.test.
example.test. 300 IN MX 20 mx2.example.test.
mx1.example.test. 300 IN A {MX1}
mx2.example.test. 300 IN A {MX2}
equal.test. 300 IN MX 10 a.equal.test.
equal.test. 300 IN MX 10 b.equal.test.
a.equal.test. 300 IN A {MX1}
b.equal.test. 300 IN A {MX2}
implicit.test. 300 IN A {MX3}
nullmx.test. 300 IN MX 0 .
nullmx.test. 300 IN A {MX1}
alias.test. 300 IN CNAME example.test.
chain.test. 300 IN MX 10 hop1.chain.test.
hop1.chain.test. 300 IN CNAME hop2.chain.test.
hop2.chain.test. 300 IN CNAME mx2.example.test.
"""
MX_HOSTS = (MX1, MX2, MX3)
MESSAGE = b"Subject: relay test\r\nFrom: alice@sender.test\r\n\r\nHello over there.\r\n"


def test_primary_mx_gets_the_message(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    primary, secondary = sinks(MX1), sinks(MX2)
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert f"relay=mx1.example.test[{MX1}]" in line
    (dump,) = primary.wait_messages(1)
    assert b"X-Rcpt-Args: <bob@example.test>" in dump
    assert b"Hello over there." in dump
    assert b"Received: from client.test" in dump  # our trace header went along
    assert secondary.messages() == []


def test_primary_down_secondary_takes_it(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    # The seed's "host is down": nothing listens on mx1; the client moves on to mx2.
    secondary = sinks(MX2)
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert f"relay=mx2.example.test[{MX2}]" in line
    assert wait_log(server, rf"mx1.example.test\[{MX1}\].*(refused|Connection)")
    assert len(secondary.wait_messages(1)) == 1


def test_both_down_defers_then_flush_delivers(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=deferred")
    assert "4.4.1" in line
    (entry,) = queue_list(server)
    (rcpt,) = entry["recipients"]
    assert rcpt["state"] == "pending"
    assert rcpt["attempts"] == 1
    # The fast profile: the first retry is a minute after the failed attempt.
    assert 55 <= rcpt["next_attempt"] - entry["arrival"] <= 65
    secondary = sinks(MX2)
    out = server.cli("queue", "flush")
    assert out.returncode == 0, out.stderr
    assert b"server woken" in out.stdout
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert f"mx2.example.test[{MX2}]" in line
    assert len(secondary.wait_messages(1)) == 1
    assert queue_list(server) == []


def test_equal_preferences_spread_across_hosts(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    a, b = sinks(MX1), sinks(MX2)
    server = sender("connection_reuse_time = 0.0\n")
    count = 16
    with server.smtp() as client:
        for i in range(count):
            client.sendmail("alice@sender.test", [f"u{i}@equal.test"], MESSAGE)
    wait_log(server, r"status=sent", count)
    # Each delivery shuffles the two preference-10 hosts: both get some (P(fail)=2^-15).
    assert a.messages()
    assert b.messages()
    assert len(a.messages()) + len(b.messages()) == count


def test_implicit_mx_uses_the_domain_address(
    sinks: Callable[..., Sink], sender: Callable[..., Server], dns: DnsServer
) -> None:
    sink = sinks(MX3)
    server = sender()
    send(server, "alice@sender.test", ["carol@implicit.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<carol@implicit.test>.*status=sent")
    assert f"relay=implicit.test[{MX3}]" in line
    assert len(sink.wait_messages(1)) == 1
    assert ("implicit.test", "MX") in dns.queries


def test_null_mx_bounces_without_connecting(
    sinks: Callable[..., Sink], sender: Callable[..., Server], dns: DnsServer
) -> None:
    # A sink on the domain's own A address: it must never see a connection.
    sink = sinks(MX1)
    server = sender()
    send(server, "alice@sender.test", ["dave@nullmx.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<dave@nullmx.test>.*status=bounced")
    assert "556 5.1.10" in line
    (path,) = server.wait_delivered("alice")
    report = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    status = list(report.iter_parts())[1].get_payload()[1]
    assert status["Status"] == "5.1.10"
    assert status["Action"] == "failed"
    assert sink.connections() == 0
    assert not [q for q in dns.queries if q[0] == "nullmx.test" and q[1] in ("A", "AAAA")]


def test_transient_rcpt_failure_then_success(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    busy = sinks(MX1, "-r", "RCPT")
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    (line,) = wait_log(server, r"to=<bob@example.test>.*status=deferred")
    assert "450 4.3.0" in line
    assert "relay=mx1.example.test" in line
    busy.cleanup()
    good = sinks(MX1)
    assert server.cli("queue", "flush", "example.test").returncode == 0
    wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert len(good.wait_messages(1)) == 1


def test_permanent_failure_bounces_with_a_correct_dsn(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    sinks(MX1, "-f", "RCPT", "-B", "550 5.1.1 <bob@example.test>: User unknown")
    server = sender()
    original = (
        b"Subject: doomed\r\nFrom: alice@sender.test\r\nMessage-ID: <m1@sender.test>\r\n"
        b"\r\nbody\r\n"
    )
    with server.smtp() as client:
        client.ehlo()
        client.mail("alice@sender.test", ["RET=FULL", "ENVID=env-42"])
        client.rcpt("bob@example.test", ["NOTIFY=FAILURE", "ORCPT=rfc822;bob@example.test"])
        client.data(original)
    wait_log(server, r"to=<bob@example.test>.*status=bounced")
    (path,) = server.wait_delivered("alice")
    raw = path.read_bytes()
    assert raw.startswith(b"Return-Path: <>\n")
    report = email.message_from_bytes(raw, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"] == "alice@sender.test"
    assert report["Auto-Submitted"] == "auto-replied"
    human, status, returned = report.iter_parts()
    assert human.get_content_type() == "text/plain"
    assert "User unknown" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; sender.test"
    assert per_message["Original-Envelope-Id"] == "env-42"
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@example.test"
    assert per_rcpt["Original-Recipient"] == "rfc822;bob@example.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx1.example.test"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@example.test>: User unknown"
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Message-ID"] == "<m1@sender.test>"
    assert inner.get_content().strip() == "body"
    # The bounce came from <>; it is never bounced itself, and the queue is empty.
    assert queue_list(server) == []


def test_no_bounce_for_the_null_sender(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    sinks(MX1, "-f", "RCPT")
    server = sender()
    send(server, "", ["bob@example.test"], MESSAGE)
    wait_log(server, r"to=<bob@example.test>.*status=bounced")
    assert "notification" not in server.log()
    assert server.delivered("alice") == []
    assert queue_list(server) == []


def test_dsn_parameters_pass_to_a_peer_that_offers_dsn(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    sink = sinks(MX1)
    server = sender()
    with server.smtp() as client:
        client.ehlo()
        client.mail("alice@sender.test", ["RET=HDRS", "ENVID=abc+2Bdef"])
        client.rcpt(
            "bob@example.test", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;b+3Db@example.test"]
        )
        client.data(MESSAGE)
    (dump,) = sink.wait_messages(1)
    # smtp-sink offers no SIZE, so none is sent.
    assert b"X-Mail-Args: <alice@sender.test> RET=HDRS ENVID=abc+2Bdef\n" in dump
    assert (
        b"X-Rcpt-Args: <bob@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+3Db@example.test"
        in dump
    )
    # The peer speaks DSN, so the success report is its job, not ours.
    wait_log(server, r"status=sent")
    assert "notification" not in server.log()


def test_success_dsn_when_the_peer_has_no_dsn(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    sinks(MX1, "-N")
    server = sender()
    with server.smtp() as client:
        client.ehlo()
        client.mail("alice@sender.test")
        client.rcpt("bob@example.test", ["NOTIFY=SUCCESS"])
        client.data(MESSAGE)
    (path,) = server.wait_delivered("alice")
    report = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    per_rcpt = list(report.iter_parts())[1].get_payload()[1]
    assert per_rcpt["Action"] == "relayed"
    assert per_rcpt["Status"].startswith("2.")
    assert list(report.iter_parts())[2].get_content_type() == "text/rfc822-headers"


def test_etrn_from_a_trusted_client_flushes_a_domain(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    wait_log(server, r"to=<bob@example.test>.*status=deferred")
    sink = sinks(MX2)
    with server.smtp() as client:
        client.ehlo()
        assert client.has_extn("etrn")
        code, text = client.docmd("ETRN", "example.test")
        assert code == 250, text
        code, text = client.docmd("ETRN", "nothing-queued.test")
        assert code == 251, text
    wait_log(server, r"to=<bob@example.test>.*status=sent")
    assert len(sink.wait_messages(1)) == 1


def test_etrn_refused_for_untrusted_clients(make_server: Callable[..., Server]) -> None:
    server = make_server("[relay]\ntrusted_networks = []\n")
    with server.smtp() as client:
        client.ehlo()
        code, _ = client.docmd("ETRN", "example.test")
        assert code == 459


def test_notify_never_silences_the_bounce(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    sinks(MX1, "-f", "RCPT")
    server = sender()
    with server.smtp() as client:
        client.ehlo()
        client.mail("alice@sender.test")
        client.rcpt("bob@example.test", ["NOTIFY=NEVER"])
        client.data(MESSAGE)
    wait_log(server, r"to=<bob@example.test>.*status=bounced")
    assert "notification" not in server.log()
    assert queue_list(server) == []


def test_helo_fallback_for_a_peer_without_esmtp(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    old = sinks(MX1, "-e")
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    wait_log(server, r"to=<bob@example.test>.*status=sent")
    (dump,) = old.wait_messages(1)
    assert b"X-Client-Proto: SMTP\n" in dump
    assert b"X-Mail-Args: <alice@sender.test>\n" in dump  # no ESMTP parameters


def test_flush_one_message_by_queue_id(
    sinks: Callable[..., Sink], sender: Callable[..., Server]
) -> None:
    server = sender()
    send(server, "alice@sender.test", ["bob@example.test"], MESSAGE)
    wait_log(server, r"status=deferred")
    (entry,) = queue_list(server)
    sink = sinks(MX1)
    out = server.cli("queue", "flush", str(entry["id"]))
    assert out.stdout.startswith(b"1 recipient(s) scheduled"), out
    wait_log(server, r"status=sent")
    assert len(sink.wait_messages(1)) == 1


@pytest.mark.parametrize(("domain", "host"), [("alias.test", MX1), ("chain.test", MX2)])
def test_cname_chains_are_followed(
    sinks: Callable[..., Sink], sender: Callable[..., Server], domain: str, host: str
) -> None:
    # alias.test is a CNAME of example.test (MX via the chain); chain.test's MX host is a
    # CNAME of a CNAME of mx2 (RFC 2181 frowns on it; real mail still has to get through).
    sink = sinks(host)
    server = sender()
    send(server, "alice@sender.test", [f"erin@{domain}"], MESSAGE)
    (line,) = wait_log(server, rf"to=<erin@{domain}>.*status=sent")
    assert f"[{host}]" in line
    assert len(sink.wait_messages(1)) == 1
