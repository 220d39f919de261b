"""LMTP per-recipient replies after DATA (RFC 2033 section 4.2) that Dovecot cannot be
made to give, from a scripted LMTP server on loopback (tests/support/scripted_lmtp.py)
behind a real Posthorn: a 4xx for one recipient defers only that one, and a server that
hangs up between the replies leaves the recipients without a verdict deferred, never
delivered; a retry sends only those, and every mailbox gets exactly one copy."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from support.scripted_lmtp import scripted_lmtp
from support.server import Server, wait_for, wait_log

pytestmark = pytest.mark.timeout(120)

# The sender is local too: a bounce or delay notice would come back through LMTP, where
# the test would see it.
SENDER = "ann@mail.test"
RCPTS = ["bob@mail.test", "carol@mail.test", "dave@mail.test"]


def config(port: int) -> str:
    return f"""
[local]
domains = ["mail.test"]
mailbox = "lmtp:127.0.0.1:{port}"

[queue]
retry_delays = [3600.0]
"""


def queued(server: Server) -> dict[str, str]:
    """The queue's recipients, address -> state (one message at most here)."""
    done = server.cli("queue", "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    listing = json.loads(done.stdout)
    return {r["address"]: r["state"] for m in listing for r in m["recipients"]}


def status(server: Server, rcpt: str) -> list[str]:
    """The delivery statuses logged for `rcpt`, in order."""
    pattern = rf"to=<{re.escape(rcpt)}>, .*status=(\w+)"
    return [m.group(1) for m in re.finditer(pattern, server.log())]


def send(server: Server, subject: str) -> None:
    with server.smtp() as client:
        refused = client.sendmail(SENDER, RCPTS, f"Subject: {subject}\r\n\r\nhello\r\n".encode())
    assert refused == {}


def flush_and_finish(server: Server) -> None:
    done = server.cli("queue", "flush")
    assert done.returncode == 0, done.stderr.decode()
    wait_for(lambda: queued(server) == {}, 30, "an empty queue")


def test_a_4xx_after_data_defers_only_that_recipient(
    make_server: Callable[..., Server],
) -> None:
    def script(rcpts: list[str], number: int) -> list[bytes | None]:
        return [
            b"452 4.2.2 <%s> Mailbox is full" % r.encode()
            if r == "carol@mail.test" and number == 0
            else b"250 2.0.0 <%s> Saved" % r.encode()
            for r in rcpts
        ]

    with scripted_lmtp(script) as lmtp:
        server = make_server(config(lmtp.port))
        send(server, "one full mailbox")
        (first,) = lmtp.wait_transactions(1)
        assert sorted(first.rcpts) == RCPTS  # one transaction, every mailbox in it
        wait_log(server, r"to=<carol@mail\.test>, .*status=deferred \(452 4\.2\.2 ")
        wait_log(server, r"status=sent", count=2)
        assert status(server, "bob@mail.test") == ["sent"]
        assert status(server, "dave@mail.test") == ["sent"]
        assert status(server, "carol@mail.test") == ["deferred"]
        # Only carol is still waiting; bob and dave are done.
        pending = {a for a, s in queued(server).items() if s == "pending"}
        assert pending == {"carol@mail.test"}

        flush_and_finish(server)
        transactions = lmtp.wait_transactions(2)
        assert transactions[1].rcpts == ("carol@mail.test",)  # the retry: carol alone
        assert len(transactions) == 2  # no bounce, no delay notice to ann
        assert [lmtp.stored(r) for r in RCPTS] == [1, 1, 1]
        assert status(server, "carol@mail.test") == ["deferred", "sent"]


def test_a_hang_up_between_replies_defers_the_rest_never_delivers_them(
    make_server: Callable[..., Server],
) -> None:
    def script(rcpts: list[str], number: int) -> list[bytes | None]:
        if number == 0:
            # The first mailbox is saved and said so; then the server goes away.
            return [b"250 2.0.0 Saved", *([None] * (len(rcpts) - 1))]
        return [b"250 2.0.0 Saved"] * len(rcpts)

    with scripted_lmtp(script) as lmtp:
        server = make_server(config(lmtp.port))
        send(server, "hang-up")
        (first,) = lmtp.wait_transactions(1)
        saved, *unknown = first.rcpts
        assert first.stored == (saved,)
        for rcpt in unknown:
            wait_log(server, rf"to=<{re.escape(rcpt)}>, .*status=deferred \(451 4\.4\.2 ")
        assert status(server, saved) == ["sent"]
        for rcpt in unknown:
            assert status(server, rcpt) == ["deferred"]  # never "sent"
        assert "peer closed" in server.log()
        pending = {a for a, s in queued(server).items() if s == "pending"}
        assert pending == set(unknown)

        flush_and_finish(server)
        transactions = lmtp.wait_transactions(2)
        assert sorted(transactions[1].rcpts) == sorted(unknown)  # not the saved one again
        assert len(transactions) == 2
        assert [lmtp.stored(r) for r in RCPTS] == [1, 1, 1]
