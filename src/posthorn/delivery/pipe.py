"""The pipe delivery agent: `|command` targets of aliases and forward files.

Owns: running a `Pipe` route's command without a shell (the argument list comes from
`shlex.split`), with the privileges of the route's account when running as root, in its
home directory, with a small fixed environment (PATH, HOME, USER, LOGNAME, SHELL and
Postfix's SENDER, RECIPIENT, LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT), the
message on standard input (Return-Path, Delivered-To, LF line endings), a time limit
after which the whole process group is killed, and mapping its exit status to an outcome
(sysexits.h: 0 delivered, EX_TEMPFAIL 75 deferred, any other code failed with a
matching enhanced status code; killed by a signal or the time limit: deferred). The
first lines of its output become the diagnostic. Does not own whether pipes are
allowed (alias expansion refuses them unless config says yes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

from posthorn import log
from posthorn.delivery.final import account, final_form
from posthorn.delivery.privileges import Credentials, must_switch
from posthorn.outcome import Deferred, Delivered, Failed, Outcome
from posthorn.queue.model import QueuedMessage, RecipientStatus
from posthorn.routing.accounts import Accounts
from posthorn.routing.routes import Pipe, Route
from posthorn.smtp.reply import Reply

__all__ = ["PipeDelivery", "outcome_of_exit"]

_log = log.get("pipe")
_OUTPUT_LIMIT = 4096
# sysexits.h codes and the RFC 3463 status each one means for a mail delivery.
_EXIT_ESC = {
    64: "5.3.0",  # EX_USAGE
    65: "5.6.0",  # EX_DATAERR
    66: "5.3.0",  # EX_NOINPUT
    67: "5.1.1",  # EX_NOUSER
    68: "5.1.2",  # EX_NOHOST
    69: "5.3.0",  # EX_UNAVAILABLE
    70: "5.3.0",  # EX_SOFTWARE
    76: "5.5.0",  # EX_PROTOCOL
    77: "5.7.1",  # EX_NOPERM
    78: "5.3.5",  # EX_CONFIG
}
EX_TEMPFAIL = 75


def _diagnostic(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines()]
    text = " ".join(line for line in lines if line)[:200]
    return "".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in text)


def outcome_of_exit(status: int, output: bytes, relay: str) -> Outcome:
    """The outcome of a command's exit status (negative: killed by that signal)."""
    said = _diagnostic(output)
    if status == 0:
        return Delivered(Reply(250, "2.0.0", ("delivered to command",)), relay)
    if status < 0:
        text = f"command killed by signal {-status}" + (f": {said}" if said else "")
        return Deferred(Reply(451, "4.3.0", (text,)), relay)
    text = f"command exited with status {status}" + (f": {said}" if said else "")
    if status == EX_TEMPFAIL:
        return Deferred(Reply(451, "4.3.0", (text,)), relay)
    return Failed(Reply(554, _EXIT_ESC.get(status, "5.3.0"), (text,)), relay)


def _environment(
    message: QueuedMessage, rcpt: RecipientStatus, creds: Credentials, delimiter: str
) -> dict[str, str]:
    address = rcpt.recipient.address
    # Postfix's names: EXTENSION is what follows the delimiter in the local part.
    local, _, extension = address.local.partition(delimiter) if delimiter else ("", "", "")
    orcpt = rcpt.recipient.orcpt or ""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": creds.home,
        "USER": creds.name,
        "LOGNAME": creds.name,
        "SHELL": "/bin/sh",
        "SENDER": message.envelope.sender_text,
        "RECIPIENT": str(address),
        "LOCAL": address.local,
        "DOMAIN": address.domain,
        "EXTENSION": extension if local else "",
        "ORIGINAL_RECIPIENT": orcpt.partition(";")[2] or str(address),
    }


class PipeDelivery:
    def __init__(
        self, timeout: float = 300.0, accounts: Accounts | None = None, delimiter: str = "+"
    ) -> None:
        self.timeout = timeout
        self.accounts = accounts
        self.delimiter = delimiter

    async def deliver(
        self,
        message: QueuedMessage,
        content: bytes,
        route: Route,
        recipients: Sequence[RecipientStatus],
    ) -> dict[int, Outcome]:
        assert isinstance(route, Pipe)
        return {r.index: await self._deliver(message, content, route, r) for r in recipients}

    async def _deliver(
        self, message: QueuedMessage, content: bytes, route: Pipe, rcpt: RecipientStatus
    ) -> Outcome:
        relay = f"pipe:{shlex.split(route.command)[0]}"
        data = final_form(message, content, rcpt)
        if isinstance(data, Failed):
            return data
        creds = account(route.user, self.accounts, relay, "run command")
        if isinstance(creds, Deferred):
            return creds
        env = _environment(message, rcpt, creds, self.delimiter)
        try:
            return await asyncio.to_thread(self._run, route, creds, env, data, relay)
        except OSError as exc:
            # The program is missing or not executable for that user: a configuration
            # error that a retry will not fix.
            text = f"cannot run {route.command!r}: {exc.strerror or exc}"
            return Failed(Reply(554, "5.3.0", (text,)), relay)

    def _run(
        self, route: Pipe, creds: Credentials, env: dict[str, str], data: bytes, relay: str
    ) -> Outcome:
        """Run the command to completion (blocking: called on a worker thread). The
        stdlib's subprocess, not the event loop's, because it can switch user."""
        switch: dict[str, Any] = {}
        if must_switch(creds):
            switch = {"user": creds.uid, "group": creds.gid, "extra_groups": list(creds.groups)}
        cwd = creds.home if os.path.isdir(creds.home) else "/"
        with tempfile.TemporaryFile() as output:
            proc = subprocess.Popen(
                shlex.split(route.command),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own process group, so a timeout kills it all
                umask=0o077,
                **switch,
            )
            try:
                # A command may exit without reading all its input: that is its business.
                with contextlib.suppress(BrokenPipeError):
                    proc.communicate(data, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                _log.warning("command %r timed out after %gs", route.command, self.timeout)
                text = f"command timed out after {self.timeout:g}s"
                return Deferred(Reply(451, "4.3.0", (text,)), relay)
            status = proc.wait()
            output.seek(0)
            said = output.read(_OUTPUT_LIMIT)
        return outcome_of_exit(status, said, relay)
