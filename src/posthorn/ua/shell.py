"""The user agent's terminal side: the only place in `ua/` that prompts or prints.

Owns: the `Terminal` (prompts, the body typed until EOF or a lone `.`, output in the
terminal's charset), running `posthorn send` from what was typed (attachment files read
here, the message composed, submitted, the outcome reported, a message that could not be
sent saved in `dead.letter` as mailx does) and the exit status of each command as a
sysexits.h code (`os.EX_*`). Does not own composing, submitting or reading mailboxes:
those are the pure modules and `submit.py` / `mailboxes.py`.
"""

from __future__ import annotations

import getpass
import mailbox
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from posthorn.config import Config, ConfigError
from posthorn.message import eol
from posthorn.ua.compose import Attachment, Composed, ComposeError, Draft, compose
from posthorn.ua.submit import Credentials, NotSent, Sent, SubmitOptions, TlsMode, submit

__all__ = ["SendRequest", "Terminal", "default_sender", "send", "submit_options"]


class Terminal:
    """Standard input and output, or the streams a test gives."""

    def __init__(
        self, stdin: TextIO | None = None, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.stdin = stdin or sys.stdin
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        for stream in (self.out, self.err):
            # Text the terminal's charset cannot show becomes '?', never a traceback.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")

    @property
    def interactive(self) -> bool:
        return self.stdin.isatty()

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def prompt(self, text: str) -> str:
        self.out.write(text)
        self.out.flush()
        answer = self.stdin.readline().rstrip("\r\n")
        if not self.interactive:
            # No terminal echoed what was typed: show it, so the output reads as a session.
            self.out.write(answer + "\n")
        return answer

    def read_body(self) -> str:
        """Lines until end of input or a line holding a single '.' (as mail(1) reads)."""
        lines = []
        for line in self.stdin:
            text = line.rstrip("\r\n")
            if text == ".":
                break
            lines.append(text)
        if self.interactive:
            self.line("EOT")
        return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True, slots=True)
class SendRequest:
    """`posthorn send` as typed: None means 'ask at the terminal'."""

    recipients: tuple[str, ...] = ()
    subject: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    attachments: tuple[str, ...] = ()
    sender: str | None = None
    server: str | None = None
    verbose: bool = False


def default_sender(config: Config) -> str:
    """From config, else login@hostname (what mail(1) writes)."""
    address = config.submit.from_address or f"{getpass.getuser()}@{config.server.hostname}"
    name = config.submit.from_name
    return f'"{name}" <{address}>' if name else address


def _split_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"server must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def submit_options(config: Config, server: str | None = None) -> SubmitOptions:
    """The submission settings of `config`, reading the password file it names."""
    sub = config.submit
    host, port = _split_server(server or sub.server)
    credentials = None
    if sub.auth_user:
        try:
            text = Path(sub.auth_password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"submit.auth_password_file: {exc.strerror}") from exc
        credentials = Credentials(sub.auth_user, text.splitlines()[0] if text else "")
    return SubmitOptions(
        host=host,
        port=port,
        helo=sub.helo or config.server.hostname,
        tls=TlsMode(sub.starttls),
        tls_verify=sub.tls_verify,
        ca_file=sub.ca_file,
        credentials=credentials,
        timeout=sub.timeout,
    )


def _read_attachments(paths: Sequence[str]) -> tuple[Attachment, ...]:
    return tuple(Attachment(Path(p).name, Path(p).read_bytes()) for p in paths)


def _dead_letter(composed: Composed, terminal: Terminal) -> None:
    """Keep what the user typed, as mailx does: append it to $DEAD or ~/dead.letter."""
    path = Path(os.environ.get("DEAD") or Path.home() / "dead.letter")
    entry = mailbox.mboxMessage(eol.to_lf(composed.content))
    entry.set_from(str(composed.sender), time.gmtime())
    try:
        box = mailbox.mbox(path)
        box.lock()
        try:
            box.add(entry)
            box.flush()
        finally:
            box.unlock()
            box.close()
    except (OSError, mailbox.Error) as exc:
        terminal.error(f"posthorn send: cannot save the message in {path}: {exc}")
        return
    terminal.error(f"posthorn send: message saved in {path}")


def _report(result: Sent | NotSent, composed: Composed, terminal: Terminal, verbose: bool) -> int:
    for refusal in result.refused:
        terminal.error(f"posthorn send: <{refusal.recipient}>: {refusal.reply} (not sent to it)")
    if isinstance(result, NotSent):
        terminal.error(f"posthorn send: not sent: {result.reason}")
        _dead_letter(composed, terminal)
        if result.temporary:
            return os.EX_TEMPFAIL
        return os.EX_NOUSER if result.refused else os.EX_UNAVAILABLE
    if verbose:
        terminal.line(f"Sent ({' '.join(result.reply.lines)})")
    return os.EX_NOUSER if result.refused else os.EX_OK


def send(config: Config, request: SendRequest, terminal: Terminal) -> int:
    """Run `posthorn send`: ask for what is missing, compose, submit, report."""
    options = submit_options(config, request.server)
    try:
        attachments = _read_attachments(request.attachments)
    except OSError as exc:
        terminal.error(f"posthorn send: {exc.filename}: {exc.strerror}")
        return os.EX_NOINPUT
    to = request.recipients or (terminal.prompt("To: "),)
    subject = request.subject if request.subject is not None else terminal.prompt("Subject: ")
    draft = Draft(
        sender=request.sender or default_sender(config),
        to=tuple(t for t in to if t.strip()),
        cc=request.cc,
        bcc=request.bcc,
        subject=subject,
        body=terminal.read_body(),
        attachments=attachments,
    )
    try:
        composed = compose(draft, now=time.time(), hostname=config.server.hostname)
    except ComposeError as exc:
        terminal.error(f"posthorn send: {exc}")
        return os.EX_USAGE if "no recipients" in str(exc) else os.EX_DATAERR
    show = terminal.line if request.verbose else (lambda line: None)
    result = submit(
        options,
        composed.sender,
        composed.recipients,
        composed.content,
        smtputf8=composed.smtputf8,
        show=show,
    )
    return _report(result, composed, terminal, request.verbose)
