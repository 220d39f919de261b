"""A raw-socket SMTP client for tests that must send bytes no library would send."""

from __future__ import annotations

import socket
import time


class Raw:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

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
