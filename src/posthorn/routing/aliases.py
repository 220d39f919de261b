"""The aliases file: the classic sendmail/Postfix format, parsed from text, re-read on change.

Owns: the grammar of aliases(5) (`name: target, target`, `#` comments, continuation
lines that start with white space, double quotes around names and targets that contain
commas or spaces), the target kinds (addresses, `\\user`, `/file`, `|command`,
`:include:/path`), the same target grammar for forward and include files, and
`AliasFile`, which re-reads the file when it changes so that edits need no restart.
An extension: a name may be `local@domain`, an alias of that one address (virtual
domains). Does not own what a target means (`expand.py`).

Parsers never raise: each problem is returned with its line number. `AliasFile` keeps
serving the last good table when the file becomes unreadable.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from posthorn import log
from posthorn.address import Address, AddressError

__all__ = [
    "AddressTarget",
    "Alias",
    "AliasFile",
    "AliasTable",
    "FileTarget",
    "IncludeTarget",
    "LocalCopy",
    "PipeTarget",
    "Problem",
    "Target",
    "alias_key",
    "load_aliases",
    "parse_aliases",
    "parse_targets",
]

_log = log.get("aliases")


@dataclass(frozen=True, slots=True)
class AddressTarget:
    """Another address: `bob` (same domain as the alias) or `bob@example.org`."""

    address: str


@dataclass(frozen=True, slots=True)
class LocalCopy:
    """`\\user`: the user's own mailbox, bypassing aliases and forward files."""

    user: str


@dataclass(frozen=True, slots=True)
class FileTarget:
    """`/path`: append to an mbox file."""

    path: str


@dataclass(frozen=True, slots=True)
class PipeTarget:
    """`|command`: feed the message to a program."""

    command: str


@dataclass(frozen=True, slots=True)
class IncludeTarget:
    """`:include:/path`: the targets listed in another file."""

    path: str


Target = AddressTarget | LocalCopy | FileTarget | PipeTarget | IncludeTarget


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Alias:
    name: str  # the key: lower-case `local` or `local@domain`
    targets: tuple[Target, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class AliasTable:
    entries: dict[str, Alias] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def get(self, key: str) -> Alias | None:
        return self.entries.get(key)


_LOCAL_NAME = re.compile(r"[^\s@\"\\,:<>()\[\];]+\Z")


def alias_key(local: str, domain: str = "") -> str:
    """The table key of an address: lower-case local part, `@domain` for virtual ones."""
    return f"{local.lower()}@{domain.lower()}" if domain else local.lower()


def _split(value: str) -> list[str]:
    """Split at commas outside double quotes (RFC 5322-style quoting, as sendmail does)."""
    items, current, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items]


def _unquote(item: str) -> str:
    if len(item) >= 2 and item[0] == '"' and item[-1] == '"':
        inner = item[1:-1]
        # Inside quotes a backslash escapes the next character, except in front of a
        # user name (`"\\user"`), where it is the local-copy marker.
        return inner if inner.startswith("\\") else re.sub(r"\\(.)", r"\1", inner)
    return item


def _target(item: str) -> Target | str:
    """One target, or the reason it is not one."""
    text = _unquote(item)
    if text.startswith("|"):
        command = text[1:].strip()
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return f"bad command {text!r}: {exc}"
        return PipeTarget(command) if argv else "empty command after '|'"
    if text[:9].lower() == ":include:":
        path = text[9:].strip()
        if not path.startswith("/"):
            return f"include path must be absolute: {text!r}"
        return IncludeTarget(path)
    if text.startswith("/"):
        return FileTarget(text)
    if text.startswith("\\"):
        user = text[1:]
        return LocalCopy(user.lower()) if _LOCAL_NAME.match(user) else f"bad user name {text!r}"
    address = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    if "@" not in address:
        return AddressTarget(address) if _LOCAL_NAME.match(address) else f"bad target {text!r}"
    try:
        Address.parse(address, utf8=True)
    except AddressError as exc:
        return f"bad address {text!r}: {exc}"
    return AddressTarget(address)


def parse_targets(value: str, line: int = 0) -> tuple[tuple[Target, ...], list[Problem]]:
    """The targets of one alias value (or one line of a forward or include file)."""
    targets: list[Target] = []
    problems: list[Problem] = []
    for item in _split(value):
        if not item:
            continue
        found = _target(item)
        if isinstance(found, str):
            problems.append(Problem(line, found))
        else:
            targets.append(found)
    return tuple(targets), problems


def _logical_lines(text: str) -> tuple[list[tuple[int, str]], list[Problem]]:
    """Join continuation lines; drop blank and comment lines (Postfix aliases(5))."""
    out: list[tuple[int, str]] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if raw[0] not in " \t":
            out.append((number, stripped))
        elif out:
            start, previous = out[-1]
            out[-1] = (start, f"{previous} {stripped}")
        else:
            problems.append(Problem(number, "continuation line without an alias before it"))
    return out, problems


def _split_name(line: str) -> tuple[str, str, bool] | None:
    """(name, value, quoted) of `name: value` or `"name": value`."""
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0 or line[end + 1 : end + 2] != ":":
            return None
        return line[1:end], line[end + 2 :], True
    name, colon, value = line.partition(":")
    return (name.strip(), value, False) if colon else None


def _name_key(name: str, quoted: bool) -> str | None:
    local, _, domain = name.rpartition("@") if "@" in name else (name, "", "")
    if not local or not (quoted or _LOCAL_NAME.match(local)):
        return None
    if not domain:
        return alias_key(local)
    try:
        return alias_key(local, Address.parse(f"x@{domain}", utf8=True).domain_key)
    except AddressError:
        return None


def parse_aliases(text: str) -> AliasTable:
    """Parse aliases(5) text. Problems (bad lines, duplicates) are reported, not raised;
    a line with a problem in one target keeps its other targets."""
    entries: dict[str, Alias] = {}
    lines, problems = _logical_lines(text)
    for number, line in lines:
        split = _split_name(line)
        if split is None:
            problems.append(Problem(number, f"missing ':' after the name: {line[:60]!r}"))
            continue
        name, value, quoted = split
        key = _name_key(name, quoted)
        if key is None:
            problems.append(Problem(number, f"bad alias name {name!r}"))
            continue
        targets, bad = parse_targets(value, number)
        problems.extend(bad)
        if not targets:
            problems.append(Problem(number, f"alias {name!r} has no targets"))
            continue
        if key in entries:
            first = entries[key].line
            problems.append(Problem(number, f"duplicate alias {name!r} (first on line {first})"))
            continue
        entries[key] = Alias(key, targets, number)
    return AliasTable(entries, tuple(sorted(problems, key=lambda p: p.line)))


def load_aliases(path: Path) -> AliasTable:
    """Read and parse an aliases file. Raises OSError when it cannot be read."""
    return parse_aliases(path.read_text(encoding="utf-8", errors="replace"))


class AliasFile:
    """An aliases file that is re-read whenever it changes (checked with stat on use)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int, int] | None = None
        self._table = AliasTable()

    def table(self) -> AliasTable:
        if self.path is None:
            return self._table
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._stamp is not None:
                _log.warning("%s: %s; keeping the aliases read before", self.path, exc.strerror)
                self._stamp = None
            return self._table
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._reload(stamp)
        return self._table

    def _reload(self, stamp: tuple[int, int, int]) -> None:
        assert self.path is not None
        try:
            table = load_aliases(self.path)
        except OSError as exc:
            _log.warning("%s: %s; keeping the aliases read before", self.path, exc.strerror)
            return
        for problem in table.problems:
            _log.warning("%s: %s", self.path, problem)
        self._stamp, self._table = stamp, table
        _log.info("%s: %d aliases loaded", self.path, len(table.entries))
