"""The sendmail command line, as cron, PHP and `git send-email` write it.

Owns: parsing sendmail's option syntax (getopt-style letters, `-oi` and `-fsender` with
their value attached or in the next word, `-bX` modes, `-q[...]`) into `SendmailArgs`,
and knowing which options are accepted and ignored as Postfix ignores them (`-oem`,
`-odb`, `-L`, ...). Posthorn's own `--config FILE` and `--data-dir DIR` may appear
anywhere. Pure: a list of words in, a value out. Does not own what the modes do.

Raises `UsageError` (a ValueError) for an option sendmail does not have, a missing
value, or a mode Posthorn does not offer.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mode", "SendmailArgs", "UsageError", "parse"]


class UsageError(ValueError):
    """The command line is wrong; the text says how."""


class Mode(enum.Enum):
    DELIVER = "m"  # -bm, the default: read a message from standard input
    SMTP = "s"  # -bs: an SMTP session on standard input and output
    PRINT_QUEUE = "p"  # -bp: mailq
    FLUSH = "q"  # -q: run the queue now
    HELP = "help"


@dataclass(frozen=True, slots=True)
class SendmailArgs:
    mode: Mode = Mode.DELIVER
    recipients: tuple[str, ...] = ()
    extract: bool = False  # -t: recipients from To/Cc/Bcc
    ignore_dots: bool = False  # -i / -oi: a lone '.' does not end the message
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    notify: str | None = None  # -N never|success,failure,delay (RFC 3461)
    ret: str | None = None  # -R full|hdrs
    envid: str | None = None  # -V
    body: str | None = None  # -B 7BIT|8BITMIME
    verbose: bool = False  # -v
    flush_domain: str | None = None  # -qRdomain
    config: str | None = None  # -C or --config
    data_dir: str | None = None  # --data-dir
    notes: tuple[str, ...] = field(default=())  # options accepted but without effect


# Letters that take a value (attached, or the next word), and those that do not, as in
# sendmail's getopt string. The ones without an effect here are accepted for
# compatibility, as Postfix accepts them.
_WITH_VALUE = frozenset("BbCdFfhLMNOopRrVXe")
_FLAGS = frozenset("cGIimnstTUv")
_IGNORED_VALUES = frozenset("dhLMOpXe")
_MODES = {"m": Mode.DELIVER, "s": Mode.SMTP, "p": Mode.PRINT_QUEUE}
_NOT_OFFERED = {
    "d": "run `posthorn serve` for the daemon",
    "D": "run `posthorn serve` for the daemon",
    "i": "newaliases is not offered",
    "v": "use `posthorn explain ADDRESS` or VRFY",
    "t": "address test mode is not offered",
    "a": "ARPANET mode is not offered",
    "h": "no host status file",
    "H": "no host status file",
    "P": "no queue statistics",
}


def _long_options(words: list[str], found: dict[str, str]) -> list[str]:
    """Take out `--config FILE`, `--data-dir DIR` (or `=` forms) and `--help`."""
    rest: list[str] = []
    it = iter(words)
    for word in it:
        name, eq, value = word.partition("=")
        if name in ("--config", "--data-dir"):
            if not eq:
                value = next(it, "")
                if not value:
                    raise UsageError(f"{name} needs a value")
            found[name[2:]] = value
        elif word == "--help":
            found["help"] = "1"
        else:
            rest.append(word)
    return rest


def _value(letter: str, attached: str, it: list[str]) -> str:
    if attached:
        return attached
    if not it:
        raise UsageError(f"option -{letter} needs a value")
    return it.pop(0)


def _apply(letter: str, value: str, out: dict[str, Any], notes: list[str]) -> None:
    if letter == "b":
        mode = _MODES.get(value[:1])
        if mode is None:
            why = _NOT_OFFERED.get(value[:1], "unknown mode")
            raise UsageError(f"-b{value}: not offered by Posthorn ({why})")
        out["mode"] = mode
    elif letter == "o":
        if value == "i":
            out["ignore_dots"] = True
        else:
            notes.append(f"-o{value} ignored")
    elif letter in ("f", "r"):
        out["sender"] = value
    else:
        key = {"F": "full_name", "N": "notify", "R": "ret", "V": "envid", "B": "body"}.get(letter)
        if key is not None:
            out[key] = value
        elif letter == "C":
            out["config"] = value
        elif letter in _IGNORED_VALUES:
            notes.append(f"-{letter} ignored")


def _flag(letter: str, out: dict[str, Any]) -> None:
    if letter == "t":
        out["extract"] = True
    elif letter == "i":
        out["ignore_dots"] = True
    elif letter == "v":
        out["verbose"] = True


def _queue_run(value: str, out: dict[str, Any], notes: list[str]) -> None:
    out["mode"] = Mode.FLUSH
    if value.startswith("R") and len(value) > 1:
        out["flush_domain"] = value[1:]
    elif value:
        # -q30m asks a daemon to run the queue every 30 minutes: the server's runner does.
        notes.append(f"-q{value}: the interval is the server's; running the queue once now")


def parse(words: Sequence[str]) -> SendmailArgs:
    """Parse a sendmail command line (without the program name)."""
    found: dict[str, str] = {}
    it = _long_options(list(words), found)
    out: dict[str, Any] = {}
    notes: list[str] = []
    while it and it[0].startswith("-") and it[0] != "-":
        word = it.pop(0)
        if word == "--":
            break
        i = 1
        while i < len(word):
            letter = word[i]
            if letter == "q":
                _queue_run(word[i + 1 :], out, notes)
                break
            if letter in _WITH_VALUE:
                _apply(letter, _value(letter, word[i + 1 :], it), out, notes)
                break
            if letter not in _FLAGS:
                raise UsageError(f"unknown option -{letter}")
            _flag(letter, out)
            i += 1
    if "help" in found:
        out["mode"] = Mode.HELP
    if "config" in found:
        out["config"] = found["config"]
    return SendmailArgs(
        recipients=tuple(it), data_dir=found.get("data-dir"), notes=tuple(notes), **out
    )
