"""Checking a loaded configuration against this machine (`posthorn config check`).

Owns: the checks the schema cannot make because they need the file system or another
module's grammar: the data directory and what lives in it (existence, ownership,
permissions, the queue database), the mailbox path templates, the files the config names
(submit.ca_file, submit.auth_password_file, the aliases file and its :include: files;
TLS, DKIM and AUTH secrets in `check_secrets.py`), listen addresses and the host name.
Each check is a function from `Config` to problems and `CHECKS` lists them: a setting
that names a file adds its own check there. Reads the file system; changes nothing. Does not
own parsing (`loader.py`), which has already refused unknown keys and bad values.

Returns problems as values; raises nothing for what it finds.
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

from posthorn.address import is_domain
from posthorn.config import check_secrets
from posthorn.config.problems import Level, Problem, readable_file
from posthorn.config.problems import error as _error
from posthorn.config.problems import warning as _warning
from posthorn.config.schema import Config

__all__ = ["CHECKS", "Level", "Problem", "check"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _directory(path: Path, what: str) -> list[Problem]:
    """A directory Posthorn writes into: ours to write, nobody else's."""
    if not path.exists():
        parent = _nearest_existing(path)
        if not os.access(parent, os.W_OK | os.X_OK):
            return [_error(f"{what} {path} does not exist and {parent} is not writable")]
        return []
    if not path.is_dir():
        return [_error(f"{what} {path} is not a directory")]
    problems = []
    info = path.stat()
    if not os.access(path, os.W_OK | os.X_OK):
        problems.append(_error(f"{what} {path} is not writable by uid {os.getuid()}"))
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        # Anyone could replace queued mail or plant messages in mailboxes.
        problems.append(
            _error(f"{what} {path} is writable by everyone (mode {info.st_mode & 0o7777:o})")
        )
    elif info.st_mode & stat.S_IWGRP:
        problems.append(_warning(f"{what} {path} is writable by its group"))
    if info.st_uid != os.getuid() and os.getuid() != 0:
        problems.append(_warning(f"{what} {path} belongs to uid {info.st_uid}, not {os.getuid()}"))
    return problems


def check_data_dir(config: Config) -> list[Problem]:
    root = Path(config.server.data_dir)
    problems = _directory(root, "data directory")
    problems += _directory(root / "queue", "queue directory")
    database = root / "queue" / "queue.db"
    if database.exists():
        problems += _queue_database(database)
    sock = root / "control.sock"
    if sock.exists() and not stat.S_ISSOCK(sock.lstat().st_mode):
        problems.append(_error(f"{sock} is in the way of the control socket (not a socket)"))
    return problems


def _queue_database(path: Path) -> list[Problem]:
    if not path.is_file():
        return [_error(f"queue database {path} is not a regular file")]
    if not os.access(path, os.R_OK | os.W_OK):
        return [_error(f"queue database {path} is not readable and writable by uid {os.getuid()}")]
    try:
        with path.open("rb") as file:
            magic = file.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        return [_error(f"queue database {path}: {exc.strerror}")]
    if magic and magic != _SQLITE_MAGIC:
        return [_error(f"queue database {path} is not an SQLite database")]
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        # Queued mail is private: only the server's user should read it.
        return [_warning(f"queue database {path} is readable by others (mode {mode:o})")]
    return []


def _mailbox_template(config: Config, setting: str, template: str) -> list[Problem]:
    """A mailbox path template (local.maildir, local.mbox) as delivery will fill it in."""
    name = f"local.{setting} {template!r}"
    if "{user}" not in template:
        return [_error(f"{name} lacks {{user}}: all users would share one mailbox")]
    try:
        example = template.format(data_dir=config.server.data_dir, user="postmaster")
    except (KeyError, IndexError, ValueError) as exc:
        return [_error(f"{name}: bad placeholder {exc}; use {{data_dir}} and {{user}}")]
    if not Path(example).is_absolute():
        return [_error(f"{name} is not an absolute path")]
    # The directory above the users' mailboxes must be creatable by the server: the
    # text before {user} up to its last '/' ("/var/mail/mbox.{user}" -> /var/mail).
    prefix = template.split("{user}", 1)[0].format(data_dir=config.server.data_dir)
    root = Path(prefix) if prefix.endswith("/") else Path(prefix).parent
    return _directory(root, "mail directory") if root != Path(config.server.data_dir) else []


def check_maildir(config: Config) -> list[Problem]:
    return _mailbox_template(config, "maildir", config.local.maildir)


def check_mbox(config: Config) -> list[Problem]:
    """local.mbox, checked whether or not a user has mbox now: a per-user format can
    switch any user to it, and then this template places the file."""
    template = config.local.mbox
    if template.endswith("/"):
        return [_error(f"local.mbox {template!r} names a directory, not a file")]
    return _mailbox_template(config, "mbox", template)


def check_submit_files(config: Config) -> list[Problem]:
    submit = config.submit
    problems: list[Problem] = []
    if submit.ca_file:
        missing = readable_file(submit.ca_file, "submit.ca_file")
        if missing is not None:
            problems.append(missing)
        else:
            try:
                ssl.create_default_context(cafile=submit.ca_file)
            except ssl.SSLError as exc:
                problems.append(
                    _error(f"submit.ca_file {submit.ca_file}: no PEM certificates ({exc.reason})")
                )
    if submit.auth_password_file:
        missing = readable_file(submit.auth_password_file, "submit.auth_password_file")
        if missing is not None:
            problems.append(missing)
        elif Path(submit.auth_password_file).stat().st_mode & 0o077:
            text = f"submit.auth_password_file {submit.auth_password_file} is readable by others"
            problems.append(_error(text + "; make it mode 0600"))
    return problems


def check_aliases(config: Config) -> list[Problem]:
    """The aliases file as the router will read it: every line it would skip, every
    :include: file it could not read, and targets that config would refuse."""
    from posthorn.routing.aliases import FileTarget, PipeTarget, load_aliases
    from posthorn.routing.forward import include_problems

    policy = config.aliases
    if not policy.file:
        return []
    missing = readable_file(policy.file, "aliases.file")
    if missing is not None:
        return [missing]
    try:
        table = load_aliases(Path(policy.file))
    except OSError as exc:
        return [_error(f"aliases.file {policy.file}: {exc.strerror}")]
    where = f"aliases.file {policy.file}"
    problems = [_error(f"{where}: {p}") for p in table.problems]
    problems += [_error(f"{where}: :include: {text}") for text in include_problems(table)]
    for alias in sorted(table.entries.values(), key=lambda a: a.line):
        for target, allowed, setting in (
            (PipeTarget, policy.allow_pipes, "aliases.allow_pipes"),
            (FileTarget, policy.allow_files, "aliases.allow_files"),
        ):
            if not allowed and any(isinstance(t, target) for t in alias.targets):
                kind = "pipe" if target is PipeTarget else "file"
                text = f"{where}: line {alias.line}: {alias.name}'s {kind} target is refused"
                problems.append(_warning(f"{text} ({setting} is false)"))
    return problems


def check_listen(config: Config) -> list[Problem]:
    from posthorn.receive.listener import parse_listen  # the listener owns the grammar

    problems = []
    for address in config.server.listen:
        try:
            parse_listen(address)
        except ValueError as exc:
            problems.append(_error(f"server.listen: {exc}"))
    return problems


def check_hostname(config: Config) -> list[Problem]:
    name = config.server.hostname
    if not is_domain(name, utf8=True):
        return [_error(f"server.hostname {name!r} is not a domain name")]
    if "." not in name:
        # RFC 5321 section 4.1.1.1: the EHLO name should be a fully qualified domain.
        return [_warning(f"server.hostname {name!r} is not fully qualified; set server.hostname")]
    return []


CHECKS: tuple[Callable[[Config], list[Problem]], ...] = (
    check_hostname,
    check_listen,
    check_data_dir,
    check_maildir,
    check_mbox,
    check_submit_files,
    check_aliases,
    check_secrets.check_tls,
    check_secrets.check_dkim,
    check_secrets.check_auth_passwords,
)


def check(config: Config) -> list[Problem]:
    """Every problem of a resolved config, errors first."""
    problems = [p for run in CHECKS for p in run(config)]
    return sorted(problems, key=lambda p: p.level is not Level.ERROR)
