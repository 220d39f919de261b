"""A scripted LMTP server on loopback (RFC 2033) for the replies Dovecot cannot be made
to give: a per-recipient 4xx after the final dot, or a hang-up between the per-recipient
replies.

It speaks enough LMTP for Posthorn's client (LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT;
PIPELINING is offered and handled by answering each line in turn). After the final dot
`script(rcpts, number)` decides, for the `number`-th transaction (from 0), the reply for
each accepted recipient in RCPT order; `None` in that list closes the connection at that
point instead. Every transaction is recorded with the replies actually sent, so a test
knows what a real mailbox server would have stored. Threads, no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from support.server import wait_for

Script = Callable[[list[str], int], list[bytes | None]]


@dataclass(frozen=True)
class Transaction:
    rcpts: tuple[str, ...]
    replies: tuple[bytes, ...]  # the replies sent after the dot (fewer on a hang-up)
    content: bytes

    @property
    def stored(self) -> tuple[str, ...]:
        """The recipients this server said it stored (a 2xx after the dot)."""
        # Fewer replies than recipients after a hang-up: the unanswered stored nothing.
        answered = zip(self.rcpts, self.replies, strict=False)
        return tuple(r for r, rep in answered if rep.startswith(b"2"))


@dataclass
class ScriptedLmtp:
    script: Script
    transactions: list[Transaction] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def wait_transactions(self, count: int, timeout: float = 30.0) -> list[Transaction]:
        wait_for(lambda: len(self.transactions) >= count, timeout, f"{count} LMTP transactions")
        with self.lock:
            return list(self.transactions)

    def stored(self, rcpt: str) -> int:
        """How many copies this server stored for `rcpt`, over all transactions."""
        with self.lock:
            return sum(t.stored.count(rcpt) for t in self.transactions)

    def _decide(self, rcpts: list[str], content: bytes) -> list[bytes | None]:
        with self.lock:
            number = len(self.transactions)
        replies = self.script(rcpts, number)
        assert len(replies) == len(rcpts), "the script must answer every recipient"
        return replies

    def _record(self, rcpts: list[str], sent: list[bytes], content: bytes) -> None:
        with self.lock:
            self.transactions.append(Transaction(tuple(rcpts), tuple(sent), content))


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, text: bytes) -> None:
        self.wfile.write(text + b"\r\n")

    def handle(self) -> None:
        lmtp = self.server.lmtp
        self.reply(b"220 lmtp.test LMTP ready")
        rcpts: list[str] = []
        while line := self.rfile.readline(4096):
            verb = line[:4].upper()
            if verb == b"LHLO":
                self.reply(b"250-lmtp.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES")
                self.reply(b"250 8BITMIME")
            elif verb == b"MAIL":
                rcpts = []
                self.reply(b"250 2.1.0 Ok")
            elif verb == b"RCPT":
                rcpts.append(line.decode().partition("<")[2].partition(">")[0])
                self.reply(b"250 2.1.5 Ok")
            elif verb == b"DATA":
                self.reply(b"354 End data with <CR><LF>.<CR><LF>")
                if not self.data(lmtp, rcpts):
                    return  # the script hung up
                rcpts = []
            elif verb in (b"RSET", b"NOOP"):
                rcpts = [] if verb == b"RSET" else rcpts
                self.reply(b"250 2.0.0 Ok")
            elif verb == b"QUIT":
                self.reply(b"221 2.0.0 Bye")
                return
            else:
                self.reply(b"500 5.5.2 Unknown command")

    def data(self, lmtp: ScriptedLmtp, rcpts: list[str]) -> bool:
        """Read the message, send the scripted replies; False when the script hangs up."""
        lines = []
        while (line := self.rfile.readline(65536)) not in (b".\r\n", b""):
            lines.append(line)
        content = b"".join(lines)
        sent: list[bytes] = []
        for verdict in lmtp._decide(rcpts, content):
            if verdict is None:
                lmtp._record(rcpts, sent, content)
                return False
            self.reply(verdict)
            sent.append(verdict)
        lmtp._record(rcpts, sent, content)
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    lmtp: ScriptedLmtp


@contextlib.contextmanager
def scripted_lmtp(script: Script) -> Iterator[ScriptedLmtp]:
    lmtp = ScriptedLmtp(script)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.lmtp = lmtp
    lmtp.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield lmtp
    finally:
        server.shutdown()
        server.server_close()
