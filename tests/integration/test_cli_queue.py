"""`posthorn queue list|show|hold|release|delete` against a running server with deferred mail.

Deferred mail: a trusted client relays to `deferred.test`, whose DNS (the loopback test
server) answers SERVFAIL; the runner defers it (451 4.4.3, a DNS failure) and retries in
30 minutes, so it stays in the queue for the test. Nothing leaves loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from support.cli import queue_list, run
from support.dns import DnsServer
from support.server import Server, wait_for

# The loopback DNS server (tests/integration/conftest.py) fails for this domain.
ZONE = ""
SERVFAIL = ("deferred.test",)


@pytest.fixture
def mta(make_server: Callable[..., Server], dns: DnsServer) -> Server:
    return make_server(f'[dns]\nnameservers = ["{dns.address}"]\n')


def _send(server: Server, recipients: list[str], subject: str = "deferred test") -> None:
    with server.smtp() as client:
        client.sendmail(
            "alice@example.org", recipients, f"Subject: {subject}\r\n\r\nbody\r\n".encode()
        )


def _deferred(server: Server, recipients: list[str]) -> dict[str, Any]:
    """Send, then wait until the runner has tried and deferred the remote recipient."""
    _send(server, recipients)

    def tried() -> dict[str, Any] | None:
        for message in queue_list(server):
            remote = [r for r in message["recipients"] if r["address"].endswith("deferred.test")]
            if remote and remote[0]["attempts"] >= 1:
                return message
        return None

    found = wait_for(tried, what=f"a deferred message\n{server.log()}")
    assert isinstance(found, dict)
    return found


def test_list_shows_deferred_mail(mta: Server) -> None:
    message = _deferred(mta, ["bob@deferred.test", "carol@localhost"])
    mta.wait_delivered("carol")
    bob, carol = message["recipients"]
    assert (bob["state"], carol["state"]) == ("pending", "delivered")
    assert bob["last_reply"].startswith("451 4.")
    assert bob["next_attempt"] > message["arrival"] + 25 * 60  # RFC 1123: 30 minutes on
    text = run(mta, "queue", "list").stdout
    lines = text.splitlines()
    assert lines[0].startswith(message["id"] + " ")
    assert lines[0].endswith("  <alice@example.org>")
    assert "<bob@deferred.test> pending, 1 attempt, next attempt in 29m" in text
    assert f"({bob['last_reply']})" in text
    assert "<carol@localhost> delivered" in text
    assert lines[-1].endswith("in 1 request.")


def test_show_prints_envelope_state_and_headers(mta: Server) -> None:
    qid = _deferred(mta, ["bob@deferred.test"])["id"]
    result = run(mta, "queue", "show", qid.lower())  # ids are not case-sensitive
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Queue ID:   {qid}" in out
    assert "Sender:     <alice@example.org>" in out
    assert "Client:     localhost [127.0.0.1], HELO client.test, ESMTP" in out
    assert "  <bob@deferred.test> pending, 1 attempt, next attempt in 29m" in out
    headers = out.split("Headers:\n", 1)[1]
    assert headers.startswith("Received: from client.test (localhost [127.0.0.1])")
    assert "Subject: deferred test" in headers
    assert "body" not in headers
    as_json = json.loads(run(mta, "queue", "show", qid, "--json").stdout)
    assert as_json["id"] == qid
    assert "Subject: deferred test" in as_json["headers"]
    missing = run(mta, "queue", "show", "0000000000000000")
    assert missing.returncode == 66
    assert "no such message" in missing.stderr


def test_hold_and_release_while_the_server_runs(mta: Server) -> None:
    qid = _deferred(mta, ["bob@deferred.test"])["id"]
    held = run(mta, "queue", "hold", qid)
    assert (held.returncode, held.stdout) == (0, f"{qid}: held\n")
    (message,) = queue_list(mta)
    assert message["hold"] is True
    assert run(mta, "queue", "list").stdout.startswith(f"{qid}!")
    released = run(mta, "queue", "release", qid)
    assert (released.returncode, released.stdout) == (0, f"{qid}: released\n")
    (message,) = queue_list(mta)
    assert message["hold"] is False
    # The schedule is kept: still one attempt, the next one still 30 minutes away.
    assert message["recipients"][0]["attempts"] == 1
    unknown = run(mta, "queue", "hold", qid, "0000000000000000")
    assert unknown.returncode == 66
    assert unknown.stdout == f"{qid}: held\n"


def test_release_wakes_the_server_for_mail_held_on_arrival(
    make_server: Callable[..., Server],
) -> None:
    server = make_server("[server]\nhold = true\n")
    _send(server, ["carol@localhost"])
    (message,) = wait_for(lambda: queue_list(server))  # type: ignore[misc]
    assert message["hold"] is True
    assert server.delivered("carol") == []
    result = run(server, "queue", "release", message["id"])
    assert result.returncode == 0, result.stderr
    # The runner sleeps up to a minute when idle: delivery within the test's deadline
    # means the control socket woke it.
    server.wait_delivered("carol", timeout=10)
    wait_for(lambda: queue_list(server) == [], what="the queue to empty")


def test_delete_one_and_all(mta: Server) -> None:
    first = _deferred(mta, ["bob@deferred.test"])["id"]
    _send(mta, ["dave@deferred.test"], "second")
    _send(mta, ["erin@deferred.test"], "third")
    wait_for(lambda: len(queue_list(mta)) == 3, what="three queued messages")
    deleted = run(mta, "queue", "delete", first)
    assert (deleted.returncode, deleted.stdout) == (0, f"{first}: deleted\n")
    assert first not in [m["id"] for m in queue_list(mta)]
    again = run(mta, "queue", "delete", first)
    assert again.returncode == 66
    everything = run(mta, "queue", "delete", "--all")
    assert everything.returncode == 0
    assert everything.stdout.count(": deleted\n") == 2
    assert run(mta, "queue", "list").stdout == "Mail queue is empty\n"
    usage = run(mta, "queue", "delete")
    assert usage.returncode == 64
    assert "give message ids or --all" in usage.stderr


def test_show_keeps_control_characters_off_the_terminal(mta: Server) -> None:
    with mta.smtp() as client:
        client.sendmail(
            "alice@example.org",
            ["bob@deferred.test"],
            b"Subject: \x1b]0;owned\x07 hi\r\n\r\nx\r\n",
        )
    (message,) = wait_for(lambda: queue_list(mta))  # type: ignore[misc]
    out = run(mta, "queue", "show", message["id"]).stdout
    assert "Subject: ?]0;owned? hi" in out
    assert "\x1b" not in out
