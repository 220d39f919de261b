"""Durable before acknowledged: SIGKILL the server during a burst of concurrent sends,
restart it on the same data directory, and every message that got a 250 is delivered,
and none twice."""

from __future__ import annotations

import collections
import email
import json
import smtplib
import threading
from pathlib import Path

import pytest

from support.server import Server, wait_for

pytestmark = pytest.mark.timeout(120)

SENDERS = 8
PER_SENDER = 40


def subjects(server: Server, user: str, size: int) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for path in server.delivered(user):
        message = email.message_from_bytes(path.read_bytes())
        payload = message.get_payload().replace("\r\n", "\n")
        assert payload == text(size).replace("\r\n", "\n"), "content changed"
        found[message["Subject"]] += 1
    return found


def text(size: int) -> str:
    """`size` x's in lines of 50 (a text line may not pass 998 octets)."""
    return "".join("x" * min(50, size - i) + "\r\n" for i in range(0, size, 50))


# 500 octets stay in the queue database; 40,000 go to a content segment beside it.
@pytest.mark.parametrize("size", [500, 40_000])
def test_sigkill_during_burst_loses_and_duplicates_nothing(
    tmp_path: Path, size: int, request: pytest.FixtureRequest
) -> None:
    server = Server(tmp_path / "mx").start()
    request.addfinalizer(server.stop)  # also when an assertion ends the test early
    acked: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def sender(n: int) -> None:
        try:
            with smtplib.SMTP(server.host, server.port, timeout=10) as client:
                for i in range(PER_SENDER):
                    subject = f"burst-{n}-{i}"
                    body = f"Subject: {subject}\r\n\r\n{text(size)}".encode()
                    client.sendmail("load@example.org", ["crash@localhost"], body)
                    with lock:
                        acked.add(subject)
                        if len(acked) >= SENDERS * PER_SENDER // 3:
                            enough.set()
        except (OSError, smtplib.SMTPException):
            return  # the server died under us: everything not acked is the client's to retry

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for t in threads:
        t.start()
    assert enough.wait(60), "the burst did not get going"
    server.kill()  # SIGKILL: no clean shutdown, whatever was in flight stays in flight
    for t in threads:
        t.join()
    with lock:
        acknowledged = set(acked)
    assert 0 < len(acknowledged) < SENDERS * PER_SENDER

    server.start()  # same data directory, new process
    try:

        def drained() -> bool:
            listing = json.loads(server.cli("queue", "list", "--json").stdout)
            return listing == []

        wait_for(drained, 60, "the queue to drain after restart")
        found = subjects(server, "crash", size)
        missing = acknowledged - set(found)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
        twice = {s: n for s, n in found.items() if n > 1}
        assert not twice, f"delivered more than once: {twice}"
    finally:
        server.stop()
