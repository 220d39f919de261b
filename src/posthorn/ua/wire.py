"""One SMTP client connection of the user agent: a socket, the client core, a transcript.

Owns: connecting to a server address by address (`Connecting to HOST port N via tcp...`,
`Trying ADDRESS... connected.`, as `mail -v` shows it), writing commands and reading
replies through the sans-I/O `ClientConnection`, and the transcript: every client line
prefixed `>>> `, every server line exactly as it was received. Does not own the dialogue
(`submit.py`, `transaction.py`) or framing and reply parsing (`posthorn.smtp.client`).

Raises `WireError` when the server closes, sends something that is not a reply, or
cannot be reached; `OSError` (timeouts, resets) passes through to the caller.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Callable, Sequence

from posthorn.smtp.client import BadReply, ClientConnection, ClientWait, Closed, Received
from posthorn.smtp.reply import Reply

__all__ = ["Show", "Wire", "WireError", "connect"]

_READ_SIZE = 65536
Show = Callable[[str], None]


class WireError(Exception):
    """The connection is unusable; the text says why."""


class Wire:
    """One connection: the client core, its socket, and the transcript of both."""

    def __init__(self, sock: socket.socket, show: Show, conn: ClientConnection) -> None:
        self.sock = sock
        self.show = show
        self.conn = conn
        self.alive = True  # False once the server closed or sent garbage
        self._raw = bytearray()  # a copy of what was received, to show lines as they came
        self._lines: collections.deque[str] = collections.deque()

    def command(self, line: str, shown: str | None = None) -> None:
        self.show(">>> " + (shown or line))
        self.sock.sendall(self.conn.send(line))

    def commands(self, lines: Sequence[str]) -> None:
        """Several commands in one write (a pipelined group, RFC 2920 section 3.1)."""
        out = b""
        for line in lines:
            self.show(">>> " + line)
            out += self.conn.send(line)
        self.sock.sendall(out)

    def message(self, content: bytes) -> None:
        self.sock.sendall(self.conn.send_message(content))
        self.show(">>> .")

    def reply(self) -> Reply:
        while True:
            got = self.conn.next_reply()
            if isinstance(got, Received):
                for _ in got.reply.lines:
                    self.show(self._lines.popleft() if self._lines else "")
                return got.reply
            if isinstance(got, Closed | BadReply):
                self.alive = False
            if isinstance(got, Closed):
                raise WireError("the server closed the connection")
            if isinstance(got, BadReply):
                raise WireError(f"bad reply from the server: {got.reason}")
            assert got is ClientWait.NEED_DATA
            data = self.sock.recv(_READ_SIZE)
            self.conn.receive_data(data)
            self._keep(data)

    def _keep(self, data: bytes) -> None:
        # The core consumes whole lines in order, so line N of its replies is line N here.
        self._raw += data
        while (end := self._raw.find(b"\n")) >= 0:
            line = bytes(self._raw[:end]).rstrip(b"\r")
            del self._raw[: end + 1]
            self._lines.append(line.decode("utf-8", "replace"))


def connect(host: str, port: int, timeout: float, show: Show) -> socket.socket:
    show(f"Connecting to {host} port {port} via tcp...")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WireError(f"cannot resolve {host}: {exc}") from exc
    last = ""
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc.strerror or str(exc)
            show(f"Trying {address[0]}... {last}")
            continue
        show(f"Trying {address[0]}... connected.")
        return sock
    raise WireError(f"cannot connect to {host} port {port}: {last}")
