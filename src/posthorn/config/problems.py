"""What `posthorn config check` reports: a problem with its level, as a value.

Owns: `Level` (an error fails the check with exit 78; a warning is printed only),
`Problem`, the two constructors the check modules use, and `readable_file`, the first
check of every setting that names a file. Raises nothing.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Level", "Problem", "error", "readable_file", "warning"]


class Level(enum.Enum):
    ERROR = "error"  # Posthorn would fail, or be unsafe
    WARNING = "warning"  # works, but probably not as meant


@dataclass(frozen=True, slots=True)
class Problem:
    level: Level
    text: str


def error(text: str) -> Problem:
    return Problem(Level.ERROR, text)


def warning(text: str) -> Problem:
    return Problem(Level.WARNING, text)


def readable_file(path: str, what: str) -> Problem | None:
    """An error when `path` (the value of setting `what`) is not a readable file."""
    file = Path(path)
    if not file.is_file():
        return error(f"{what} {path}: no such file")
    if not os.access(file, os.R_OK):
        return error(f"{what} {path}: not readable by uid {os.getuid()}")
    return None
