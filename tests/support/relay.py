"""Receivers and senders for relay tests: Postfix's smtp-sink, Posthorn instances on
distinct loopback addresses that share one port (MX hosts all listen on "port 25"), and
the sending Posthorn's config. Every wait polls with a deadline; nothing sleeps for a
fixed time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from support.server import Server, wait_for

SMTP_SINK = "/usr/sbin/smtp-sink"


def shared_port(*hosts: str) -> int:
    """A TCP port free on every one of `hosts` (127.0.0.2, 127.0.0.3, ...)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        ok = True
        for host in hosts:
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise AssertionError("no shared free port")


def accepting(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


@dataclass
class Sink:
    """A running smtp-sink that dumps every message it accepts into a directory.

    `options` are smtp-sink's own: -8 (no 8BITMIME), -r RCPT (4xx to RCPT), -f RCPT
    (5xx), -B 'reply' (the 5xx text), -q CMD (hang up after CMD), and so on.
    """

    host: str
    port: int
    options: tuple[str, ...] = ()
    name: str = "sink.test"
    proc: subprocess.Popen[bytes] | None = None
    dump: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="posthorn-sink-")))

    @property
    def log_path(self) -> Path:
        return self.dump / "sink.log"

    def start(self) -> Sink:
        messages = self.dump / "msg"
        messages.mkdir(exist_ok=True)
        # smtp-sink drops root privileges to write its dumps: let "nobody" write there.
        os.chmod(self.dump, 0o755)
        os.chmod(messages, 0o777)
        user = ("-u", "nobody") if os.geteuid() == 0 else ()
        args = [SMTP_SINK, *user, "-v", "-h", self.name, "-d", f"{messages}/m.", *self.options]
        args += [f"{self.host}:{self.port}", "64"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        wait_for(lambda: accepting(self.host, self.port), what=f"smtp-sink {self.host}")
        # The probe connection above counts as a session: remember how many there were.
        wait_for(lambda: self.log().count("disconnect") >= 1, what="probe logged")
        self.baseline = self.log().count("connect (")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connections(self) -> int:
        """SMTP sessions opened by clients other than our start-up probe."""
        return self.log().count("connect (") - self.baseline

    def messages(self) -> list[bytes]:
        found = sorted((self.dump / "msg").glob("m.*"), key=lambda p: p.stat().st_mtime_ns)
        return [p.read_bytes() for p in found]

    def wait_messages(self, count: int = 1, timeout: float = 20.0) -> list[bytes]:
        wait_for(lambda: len(self.messages()) >= count, timeout, f"{count} at {self.host}")
        # A dump is complete once its session logged the "." after it.
        wait_for(lambda: self.log().count(": .\n") >= count, timeout, "end of data logged")
        return self.messages()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dump, ignore_errors=True)


_FAST_TIMEOUTS = (
    "greeting_timeout", "command_timeout", "mail_timeout", "rcpt_timeout", "data_timeout",
    "data_block_timeout", "data_end_timeout",
)  # fmt: skip


def sender_config(
    dns_address: str, port: int, extra: str = "", *, local: str = "", queue: str = ""
) -> str:
    """Config of the sending Posthorn: its own domain, the test DNS, fast timeouts.
    `local` and `queue` go on in those sections; `extra` goes on in [smtp_client] and
    may open further tables."""
    return (
        '[server]\nhostname = "sender.test"\n'
        f'[local]\ndomains = ["sender.test"]\n{local}'
        f'[queue]\nretry = "fast"\n{queue}'
        f'[dns]\nnameservers = ["{dns_address}"]\ntimeout = 2.0\n'
        f"[smtp_client]\nport = {port}\nconnect_timeout = 3.0\n"
        + "".join(f"{name} = 5.0\n" for name in _FAST_TIMEOUTS)
        + textwrap.dedent(extra)
    )


def send(server: Server, sender: str, recipients: list[str], data: bytes) -> None:
    with server.smtp() as client:
        client.sendmail(sender, recipients, data)
