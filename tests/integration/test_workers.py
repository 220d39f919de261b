"""Several worker processes on one port and one queue (`[server] workers`)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from support.server import Server, wait_for

pytestmark = pytest.mark.timeout(90)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _pids_logging(server: Server, text: str) -> set[str]:
    return {line.split("[")[1].split("]")[0] for line in server.log().splitlines() if text in line}


def test_workers_share_port_and_queue(make_server: object) -> None:
    server: Server = make_server('[server]\nhostname = "mx.test"\nworkers = 2\n')  # type: ignore[operator]
    assert server.proc is not None
    workers = wait_for(lambda: len(_children(server.proc.pid)) == 2 and _children(server.proc.pid))
    assert isinstance(workers, list)
    # Both must be listening before the kernel can spread connections over them.
    wait_for(lambda: len(_pids_logging(server, "listening on")) == 2, what="two listeners")

    def send(n: int) -> None:
        for i in range(5):
            with server.smtp() as client:
                client.sendmail(
                    "a@example.org", ["wendy@localhost"], b"Subject: %d-%d\r\n\r\nx\r\n" % (n, i)
                )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.wait_delivered("wendy", 30)) == 30
    # Both processes took connections (the kernel spreads them over SO_REUSEPORT sockets).
    pids = {
        line.split("[")[1].split("]")[0]
        for line in server.log().splitlines()
        if "connect from" in line
    }
    assert pids == {str(p) for p in workers}


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(make_server: object) -> None:
    server: Server = make_server('[server]\nhostname = "mx.test"\nworkers = 2\n')  # type: ignore[operator]
    assert server.proc is not None
    master = server.proc.pid
    first = wait_for(lambda: len(_children(master)) == 2 and _children(master))
    assert isinstance(first, list)
    os.kill(first[0], signal.SIGKILL)
    replaced = wait_for(
        lambda: len(set(_children(master)) - set(first)) == 1 and _children(master)
    )
    assert isinstance(replaced, list)
    with server.smtp() as client:
        assert client.noop()[0] == 250
    server.stop()
    for pid in replaced:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_workers_end_with_a_killed_supervisor(make_server: object) -> None:
    server: Server = make_server('[server]\nhostname = "mx.test"\nworkers = 2\n')  # type: ignore[operator]
    assert server.proc is not None
    master = server.proc.pid
    workers = wait_for(lambda: len(_children(master)) == 2 and _children(master))
    assert isinstance(workers, list)
    server.kill()  # SIGKILL: the supervisor cannot pass anything on

    def gone() -> bool:
        return all(not Path(f"/proc/{p}").exists() for p in workers)

    wait_for(gone, 20, "workers to follow the supervisor")
