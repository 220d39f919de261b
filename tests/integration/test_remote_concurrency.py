"""Outgoing concurrency limits: `smtp_client.destination_concurrency` per destination and
`smtp_client.max_connections` over all of them are never exceeded, and both are reached
when there is enough mail. Three destinations (each a scripted peer on its own loopback
port, routed through [routes]) get four messages each from a real Posthorn, all due at
once after a flush; the peers count transactions in progress (MAIL to final reply: the
client holds a connection in use for all of it) and hold each final reply until the
global limit is reached (or two seconds pass), so that a client without limits shows
more at once. Idle cached connections are not "in use" (as in Postfix) and not counted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from support.server import Server, free_port, wait_log
from support.smtp_peer import ScriptedPeer, serving

ZONE = ""
MX_HOSTS = ("127.0.0.1",)
PER_DESTINATION, TOTAL, EACH = 2, 3, 4


class _Gate:
    """Transactions in progress at all peers together; holds each until there are `full`."""

    def __init__(self, full: int) -> None:
        self.full = full
        self.busy = 0
        self.most = 0
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()  # made on the peers' loop
        return self._changed

    def change(self, step: int) -> None:
        self.busy += step
        self.most = max(self.most, self.busy)
        condition = self._condition()

        async def notify() -> None:
            async with condition:
                condition.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def hold(self) -> None:
        condition = self._condition()
        with contextlib.suppress(TimeoutError):
            async with condition:
                await asyncio.wait_for(condition.wait_for(lambda: self.busy >= self.full), 2.0)


def test_destination_and_global_limits_are_never_exceeded(
    sender: Callable[..., Server],
) -> None:
    gate = _Gate(TOTAL)
    peers = [ScriptedPeer(on_busy=gate.change, before_final=gate.hold) for _ in range(3)]
    ports = [free_port() for _ in peers]
    routes = "".join(f'"d{n}.test" = "smtp:[127.0.0.1]:{port}"\n' for n, port in enumerate(ports))
    server = sender(
        f"destination_concurrency = {PER_DESTINATION}\nmax_connections = {TOTAL}\n"
        f"connection_reuse_time = 0.0\n[routes]\n{routes}"
    )
    # The peers are down while the mail arrives: it all waits in the queue, then one
    # flush makes all twelve due at the same instant.
    with server.smtp() as client:
        for n in range(len(peers)):
            for i in range(EACH):
                client.sendmail(
                    "alice@sender.test", [f"u{i}@d{n}.test"], b"Subject: %d\r\n\r\nx\r\n" % i
                )
    wait_log(server, r"status=deferred", EACH * len(peers))
    with serving(*((peer, "127.0.0.1", port) for peer, port in zip(peers, ports, strict=True))):
        assert server.cli("queue", "flush").returncode == 0
        wait_log(server, r"status=sent", EACH * len(peers), timeout=60)
    assert [len(peer.messages) for peer in peers] == [EACH] * len(peers)
    assert gate.most == TOTAL, "the global limit was exceeded or never reached"
    assert max(peer.most_busy for peer in peers) == PER_DESTINATION
    assert all(peer.most_busy <= PER_DESTINATION for peer in peers)
