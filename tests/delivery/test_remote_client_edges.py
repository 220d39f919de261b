"""Smaller features of the SMTP client against loopback peers: a message that needs
SMTPUTF8 when no MX offers it fails (RFC 6531 section 3.2) without MAIL sent anywhere;
the DATA and end-of-data timeouts (RFC 5321 section 4.5.3.2.4 and .6) are each their own
setting, so a short one fires while the others are long."""

from __future__ import annotations

import asyncio

import pytest

from posthorn.outcome import Deferred, Failed, Outcome
from support.dns import dns_server
from support.relay import shared_port
from support.remote import deliver_only, message, remote
from support.smtp_peer import ScriptedPeer

MX1, MX2 = "127.0.0.2", "127.0.0.3"
ZONE = f"""
utf8.test. 300 IN MX 10 mx1.utf8.test.
utf8.test. 300 IN MX 20 mx2.utf8.test.
mx1.utf8.test. 300 IN A {MX1}
mx2.utf8.test. 300 IN A {MX2}
"""


def test_smtputf8_needed_and_no_mx_offers_it_fails_without_sending() -> None:
    port = shared_port(MX1, MX2)
    peers = [ScriptedPeer(), ScriptedPeer()]  # neither offers SMTPUTF8

    async def run(dns: str) -> Outcome:
        servers = [
            await asyncio.start_server(peer.handle, host, port)
            for peer, host in zip(peers, (MX1, MX2), strict=True)
        ]
        msg = message("jürgen@utf8.test", smtputf8=True)
        return await deliver_only(remote(dns=dns, port=port), msg, servers)

    with dns_server(ZONE) as dns:
        outcome = asyncio.run(run(dns.address))
    assert isinstance(outcome, Failed)
    assert outcome.reply.code == 553
    assert outcome.reply.esc == "5.6.7"
    assert "does not support SMTPUTF8" in outcome.reply.text
    # Both exchangers were asked (EHLO), neither was sent the transaction.
    for peer in peers:
        (session,) = peer.sessions
        assert session.commands[0].startswith("EHLO ")
        assert not [c for c in session.commands if c.startswith("MAIL")]


async def _stall_forever() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize(
    ("setting", "stall_at"),
    [("data_timeout", "DATA"), ("data_end_timeout", "end of data")],
)
def test_a_short_data_timeout_fires_alone(setting: str, stall_at: str) -> None:
    def silent_at_data(session: int, line: str) -> bytes | None:
        return b"" if line == "DATA" else None  # no 354, ever

    peer = ScriptedPeer(
        pipelining=False,
        reply=silent_at_data if stall_at == "DATA" else lambda s, line: None,
        before_final=_stall_forever if stall_at == "end of data" else None,
    )
    # Every other timeout is long: only the one under test can end the wait in time.
    long = {
        name: 30.0
        for name in ("greeting_timeout", "command_timeout", "mail_timeout", "rcpt_timeout",
                     "data_timeout", "data_block_timeout", "data_end_timeout")
    }  # fmt: skip
    long[setting] = 0.5

    async def run() -> Outcome:
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = remote({"*": f"smtp:[127.0.0.1]:{port}"}, **long)
        return await deliver_only(transport, message(), [server], within=10)

    outcome = asyncio.run(run())
    assert isinstance(outcome, Deferred)
    assert "timeout waiting for a reply" in outcome.reply.text
    assert peer.messages == ([b"Subject: t\r\n\r\nbody\r\n"] if stall_at == "end of data" else [])
