"""Light-load figures: single-message latency (connect to 250) and memory per idle
connection. Each server is driven by a plain blocking client, one message at a time."""

from __future__ import annotations

import resource
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import servers

MESSAGES = 300
IDLE = 1000
_BODY = b"Subject: latency\r\n\r\n" + (b"x" * 72 + b"\r\n") * 14 + b".\r\n"


def _reply(sock: socket.socket, buf: bytearray) -> bytes:
    while True:
        end = buf.find(b"\r\n")
        while end >= 0:
            line = bytes(buf[: end + 2])
            del buf[: end + 2]
            if line[3:4] != b"-":
                return line
            end = buf.find(b"\r\n")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk


def one_message(port: int) -> float:
    """Seconds from connect() to the 250 after the message."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buf = bytearray()
        _reply(sock, buf)
        for command in (
            b"EHLO client.bench",
            b"MAIL FROM:<a@client.bench>",
            b"RCPT TO:<bob@localhost>",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            _reply(sock, buf)
        sock.sendall(_BODY)
        line = _reply(sock, buf)
        elapsed = time.perf_counter() - start
        if not line.startswith(b"250"):
            raise RuntimeError(line)
        sock.sendall(b"QUIT\r\n")
    return elapsed


def latencies(port: int) -> dict[str, float]:
    samples = sorted(one_message(port) for _ in range(MESSAGES))
    return {"p50_ms": statistics.median(samples) * 1000,
            "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000}  # fmt: skip


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_memory(work: Path) -> dict[str, float]:
    """Posthorn's resident memory per idle connection that has said EHLO."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, IDLE * 2 + 100)), hard))
    with servers.posthorn(work / "idle", hold=True) as srv:
        pid = srv.pids[0]
        one_message(srv.port)  # warm up: everything imported and allocated once
        before = _rss_kib(pid)
        socks = []
        try:
            for _ in range(IDLE):
                sock = socket.create_connection(("127.0.0.1", srv.port))
                buf = bytearray()
                _reply(sock, buf)
                sock.sendall(b"EHLO idle.bench\r\n")
                _reply(sock, buf)
                socks.append(sock)
            time.sleep(0.5)
            after = _rss_kib(pid)
        finally:
            for sock in socks:
                sock.close()
    return {"connections": IDLE, "kib_per_connection": (after - before) / IDLE}


def all_figures(work: Path, runs: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    launchers = {"posthorn": lambda w: servers.posthorn(w, hold=True), "postfix": servers.postfix,
                 "aiosmtpd": servers.aiosmtpd}  # fmt: skip
    for run in range(runs):
        for name, launch in launchers.items():
            with launch(work / f"lat-{name}-{run}") as srv:
                found.setdefault(name, []).append(latencies(srv.port))
    result: dict[str, Any] = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in found.items()
    }
    result["idle"] = idle_memory(work)
    return result


def render(figures: dict[str, Any]) -> str:
    lines = [f"## Single message latency, connect to 250 ({MESSAGES} sequential messages)", "",
             "| server | p50 ms | p99 ms |", "|---|---|---|"]  # fmt: skip
    for name, row in figures.items():
        if name != "idle":
            lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    idle = figures["idle"]
    lines += ["", f"Posthorn holding {idle['connections']} idle connections (after EHLO): "
              f"{idle['kib_per_connection']:.1f} KiB resident memory per connection."]  # fmt: skip
    return "\n".join(lines)
