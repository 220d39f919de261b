"""Checking a loaded configuration against this machine (`posthorn config check`).

Owns: the checks the schema cannot make because they need the file system or another
module's grammar: the data directory and what lives in it (existence, ownership,
permissions, the queue database), the mailbox path template, the files the config names
(submit.ca_file, submit.auth_password_file), listen addresses and the host name. Each
check is a function from `Config` to problems and `CHECKS` lists them: a setting that
names a file adds its own check there. Reads the file system; changes nothing. Does not
own parsing (`loader.py`), which has already refused unknown keys and bad values.

Returns problems as values; raises nothing for what it finds.
"""

from __future__ import annotations

import enum
import os
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posthorn.address import is_domain
from posthorn.config.schema import Config

__all__ = ["CHECKS", "Level", "Problem", "check"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


class Level(enum.Enum):
    ERROR = "error"  # Posthorn would fail, or be unsafe
    WARNING = "warning"  # works, but probably not as meant


@dataclass(frozen=True, slots=True)
class Problem:
    level: Level
    text: str


def _error(text: str) -> Problem:
    return Problem(Level.ERROR, text)


def _warning(text: str) -> Problem:
    return Problem(Level.WARNING, text)


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


def check_maildir(config: Config) -> list[Problem]:
    template = config.local.maildir
    if "{user}" not in template:
        return [
            _error(f"local.maildir {template!r} lacks {{user}}: all users would share one mailbox")
        ]
    try:
        example = template.format(data_dir=config.server.data_dir, user="postmaster")
    except (KeyError, IndexError, ValueError) as exc:
        return [
            _error(
                f"local.maildir {template!r}: bad placeholder {exc}; use {{data_dir}} and {{user}}"
            )
        ]
    if not Path(example).is_absolute():
        return [_error(f"local.maildir {template!r} is not an absolute path")]
    # The directory above the users' mailboxes must be creatable by the server.
    root = Path(template.split("{user}", 1)[0].format(data_dir=config.server.data_dir))
    return _directory(root, "mail directory") if root != Path(config.server.data_dir) else []


def _readable_file(path: str, what: str) -> Problem | None:
    file = Path(path)
    if not file.is_file():
        return _error(f"{what} {path}: no such file")
    if not os.access(file, os.R_OK):
        return _error(f"{what} {path}: not readable by uid {os.getuid()}")
    return None


def check_submit_files(config: Config) -> list[Problem]:
    submit = config.submit
    problems: list[Problem] = []
    if submit.ca_file:
        missing = _readable_file(submit.ca_file, "submit.ca_file")
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
        missing = _readable_file(submit.auth_password_file, "submit.auth_password_file")
        if missing is not None:
            problems.append(missing)
        elif Path(submit.auth_password_file).stat().st_mode & 0o077:
            text = f"submit.auth_password_file {submit.auth_password_file} is readable by others"
            problems.append(_error(text + "; make it mode 0600"))
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
    check_submit_files,
)


def check(config: Config) -> list[Problem]:
    """Every problem of a resolved config, errors first."""
    problems = [p for run in CHECKS for p in run(config)]
    return sorted(problems, key=lambda p: p.level is not Level.ERROR)
