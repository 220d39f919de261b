"""A raw SMTP socket for tests that must send exactly the bytes they mean (pipelining,
BDAT, smuggling, NUL, overlong lines), reading replies with a deadline."""

from __future__ import annotations

import re
import socket
import time

_LAST_LINE = re.compile(rb"^\d{3}(?: [^\r\n]*)?\r\n", re.MULTILINE)


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout)
        self.timeout = timeout
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, count: int = 1) -> list[str]:
        """Read `count` complete replies; each as its lines joined by '\\n'."""
        out: list[str] = []
        deadline = time.monotonic() + self.timeout
        while len(out) < count:
            match = _LAST_LINE.search(self.buffer)
            if match is not None:
                reply, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
                out.append(reply.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n"))
                continue
            if time.monotonic() > deadline:
                raise AssertionError(f"no reply; have {self.buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; have {self.buffer!r}, got {out}")
            self.buffer += chunk
        return out

    def reply(self) -> str:
        return self.replies(1)[0]

    def command(self, line: bytes) -> str:
        self.send(line + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF within the timeout)."""
        self.sock.settimeout(self.timeout)
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
