"""Raw SMTP sockets for tests that must send exactly the bytes they mean (pipelining,
BDAT, smuggling, NUL, overlong lines), which no SMTP library would send.

`RawClient` reads each reply as text with a deadline (AssertionError when none comes);
`Raw` hands back the bytes as received, and b"" once the server has closed.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Self

_LAST_LINE = re.compile(rb"^\d{3}(?: [^\r\n]*)?\r\n", re.MULTILINE)


class _Socket:
    """A connection to the server and the bytes received but not yet read."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout)
        self.timeout = timeout
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawClient(_Socket):
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


class Raw(_Socket):
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        super().__init__("127.0.0.1", port, timeout)

    def reply(self) -> bytes:
        """One complete (possibly multi-line) reply; b"" when the server closed."""
        while True:
            lines = self.buffer.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if (len(line) >= 4 and line[3:4] == b" ") or len(line) == 3:
                    end = sum(len(x) + 2 for x in lines[: i + 1])
                    out, self.buffer = self.buffer[:end], self.buffer[end:]
                    return out
            chunk = self.sock.recv(65536)
            if not chunk:
                out, self.buffer = self.buffer, b""
                return out
            self.buffer += chunk

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.reply()

    def closed(self, timeout: float = 10.0) -> bool:
        """True once the server has closed the connection (within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buffer += chunk
        return False
