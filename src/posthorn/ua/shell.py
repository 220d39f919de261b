"""The user agent's commands, from what was typed to the exit status: send and read.

Owns: running `posthorn send` (what is missing asked at the terminal, attachment files
read, the message composed and submitted, the outcome reported, a message that could
not be sent kept in `dead.letter` as mailx does), running `posthorn read` (list, or show
one message, save its attachments, mark it seen), the submission settings from config,
and each command's exit status as a sysexits.h code (`os.EX_*`). All input and output
goes through the `Terminal`. Does not own composing, submitting, decoding or mailbox
files: `compose.py`, `submit.py` / `transaction.py`, `view.py` / `render.py`,
`mailboxes.py`.
"""

from __future__ import annotations

import email.utils
import getpass
import json
import mailbox
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from posthorn.config import Config, ConfigError
from posthorn.message import eol
from posthorn.ua import render, view
from posthorn.ua.mailboxes import Entry, MailboxError, Reader, save_parts
from posthorn.ua.terminal import Terminal

if TYPE_CHECKING:
    # Imported where used: `read` lists 10,000 messages in well under a second, start-up
    # included, and needs neither the composer nor TLS.
    from posthorn.ua.compose import Attachment, Composed
    from posthorn.ua.submit import NotSent, Sent, SubmitOptions

__all__ = [
    "ReadRequest",
    "SendRequest",
    "Terminal",
    "default_sender",
    "read",
    "send",
    "submit_options",
]


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
    return f'"{email.utils.quote(name)}" <{address}>' if name else address


def _split_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"server must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def submit_options(config: Config, server: str | None = None) -> SubmitOptions:
    """The submission settings of `config`, reading the password file it names."""
    from posthorn.ua.submit import Credentials, SubmitOptions, TlsMode

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
    from posthorn.ua.compose import Attachment

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
    from posthorn.ua.submit import Sent

    for refusal in result.refused:
        terminal.error(f"posthorn send: <{refusal.recipient}>: {refusal.reply} (not sent to it)")
    if not isinstance(result, Sent):
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
    from posthorn.ua.compose import ComposeError, Draft, compose
    from posthorn.ua.submit import submit

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
    if not any(a.strip() for a in (*draft.to, *draft.cc, *draft.bcc)):
        terminal.error("posthorn send: no recipients")
        return os.EX_USAGE
    try:
        composed = compose(draft, now=time.time(), hostname=config.server.hostname)
    except ComposeError as exc:  # an address that cannot be used
        terminal.error(f"posthorn send: {exc}")
        return os.EX_DATAERR
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


# -- posthorn read -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadRequest:
    mailbox: Path
    owner: str = ""  # the user, for "No mail for ..."; "" when a path was given
    number: int | None = None  # None lists the mailbox
    save: Path | None = None
    as_json: bool = False


def _status(entry: Entry) -> str:
    """N new, U seen by no one but no longer new, blank once read; then other flags."""
    first = "N" if entry.new and not entry.seen else ("U" if not entry.seen else " ")
    return first + "".join(f for f in entry.flags if f in "FRT")


def _entry_json(entry: Entry) -> dict[str, object]:
    summary = view.summarize(entry.head)
    return {
        "number": entry.number,
        "flags": entry.flags,
        "new": entry.new,
        "date": summary.date.isoformat() if summary.date else None,
        "from": summary.sender,
        "subject": summary.subject,
        "size": entry.size,
    }


def _list(reader: Reader, request: ReadRequest, terminal: Terminal) -> int:
    entries = reader.entries()
    if request.as_json:
        terminal.line(json.dumps([_entry_json(e) for e in entries], ensure_ascii=False, indent=1))
    elif not entries:
        terminal.line(f"No mail for {request.owner}." if request.owner else "No mail.")
    else:
        lines = (
            view.listing_line(e.number, _status(e), view.summarize(e.head), e.size)
            for e in entries
        )
        terminal.lines(lines)
    return os.EX_OK


def _show(reader: Reader, request: ReadRequest, number: int, terminal: Terminal) -> int:
    entry = reader.entry(number)
    if entry is None:
        count = len(reader.entries())
        terminal.error(f"posthorn read: no message {number} (the mailbox holds {count})")
        return os.EX_NOINPUT
    try:
        message = reader.message(entry)
    except KeyError:  # another reader deleted it since the mailbox was listed
        terminal.error(f"posthorn read: message {number} is no longer in the mailbox")
        return os.EX_NOINPUT
    rendered = render.render(message)
    saved: list[Path] = []
    if request.save is not None:
        parts = ((p.number, p.filename, p.payload) for p in rendered.attachments)
        try:
            saved = save_parts(parts, request.save)
        except OSError as exc:
            terminal.error(f"posthorn read: cannot save into {request.save}: {exc.strerror}")
            return os.EX_CANTCREAT
    terminal.line(f"Message {number}:")
    for line in render.render_lines(rendered, (str(p) for p in saved)):
        terminal.line(line)
    reader.mark_seen(entry)
    return os.EX_OK


def read(request: ReadRequest, terminal: Terminal) -> int:
    """Run `posthorn read`: list the mailbox, or show (and mark seen) one message."""
    if not request.mailbox.exists() and request.owner:
        if request.number is None:
            terminal.line(f"No mail for {request.owner}.")
            return os.EX_OK
        terminal.error(f"posthorn read: no mail for {request.owner}")
        return os.EX_NOINPUT
    try:
        reader = Reader(request.mailbox)
    except (MailboxError, mailbox.NoSuchMailboxError) as exc:
        terminal.error(f"posthorn read: {exc}")
        return os.EX_NOINPUT
    try:
        if request.number is None:
            return _list(reader, request, terminal)
        return _show(reader, request, request.number, terminal)
    except OSError as exc:
        terminal.error(f"posthorn read: {request.mailbox}: {exc.strerror or exc}")
        return os.EX_IOERR
    finally:
        reader.close()
