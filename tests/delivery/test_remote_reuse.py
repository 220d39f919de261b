"""Several messages to one destination over one connection, with RSET between them (as
Postfix does on a cached connection): in the pipelined group when the peer offers
PIPELINING, in lock-step when it does not; a refused RSET closes the connection and the
message goes over a new one, exactly once. Peers are scripted servers on loopback
(support/smtp_peer.py) so that what arrives in each read can be seen."""

from __future__ import annotations

import asyncio

import pytest

from posthorn.outcome import Delivered, Outcome
from support.remote import deliver, message, remote
from support.smtp_peer import ScriptedPeer


async def _deliver_three(peer: ScriptedPeer) -> list[Outcome]:
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = remote({"*": f"smtp:[127.0.0.1]:{port}"}, connection_reuse_time=30.0)
    outcomes: list[Outcome] = []
    try:
        async with asyncio.timeout(20):
            for n in range(3):
                msg = message(qid=f"00000000000000A{n}")
                outcomes.extend((await deliver(transport, msg)).values())
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()
    return outcomes


def _verbs(commands: list[str]) -> list[str]:
    return [c.split(" ", 1)[0].split(":", 1)[0] for c in commands]


def test_rset_goes_in_the_pipelined_group_of_the_next_message() -> None:
    # The peer holds its replies to RSET, MAIL and RCPT until DATA (RFC 2920 section
    # 3.1): a client that waited for the RSET reply before MAIL would time out here.
    peer = ScriptedPeer(pipelining=True)
    outcomes = asyncio.run(_deliver_three(peer))
    assert all(isinstance(o, Delivered) for o in outcomes), outcomes
    (session,) = peer.sessions
    group = ["MAIL", "RCPT", "DATA"]
    assert _verbs(session.commands) == ["EHLO", *group, "RSET", *group, "RSET", *group, "QUIT"]
    assert len(peer.messages) == 3


def test_lock_step_to_a_peer_without_pipelining() -> None:
    peer = ScriptedPeer(pipelining=False)
    outcomes = asyncio.run(_deliver_three(peer))
    assert all(isinstance(o, Delivered) for o in outcomes), outcomes
    (session,) = peer.sessions
    group = ["MAIL", "RCPT", "DATA"]
    assert _verbs(session.commands) == ["EHLO", *group, "RSET", *group, "RSET", *group, "QUIT"]
    # Lock-step: no read ever carried a second command (RFC 2920 is not offered).
    assert session.most_per_read == 1
    assert len(peer.messages) == 3


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(
    "answer", [b"500 5.5.1 RSET? never heard of it\r\n", b"421 4.3.2 bye\r\n"]
)
def test_a_refused_rset_means_a_new_connection(pipelining: bool, answer: bytes) -> None:
    def refuse_rset_in_the_first_session(session: int, line: str) -> bytes | None:
        return answer if session == 0 and line == "RSET" else None

    peer = ScriptedPeer(pipelining=pipelining, reply=refuse_rset_in_the_first_session)
    outcomes = asyncio.run(_deliver_three(peer))
    assert all(isinstance(o, Delivered) for o in outcomes), outcomes
    first, second = peer.sessions
    assert _verbs(first.commands)[:5] == ["EHLO", "MAIL", "RCPT", "DATA", "RSET"]
    # The content of the second message never went over the refused connection...
    assert _verbs(first.commands).count("DATA") <= 2
    # ...and the second connection starts afresh and carries the other two.
    group = ["MAIL", "RCPT", "DATA"]
    assert _verbs(second.commands) == ["EHLO", *group, "RSET", *group, "QUIT"]
    assert len(peer.messages) == 3  # each message exactly once
