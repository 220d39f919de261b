"""Settings: the field that carries a setting's default and documentation, and the checks
of a single value that the section dataclasses run in `__post_init__`.

Owns: `setting(default, doc, secret=...)` (the doc is what `posthorn config show` prints
above the key; a secret is shown masked) and the range and choice checks with their
messages, which name the dotted key.
Does not own any section (the section modules) or reading TOML (`loader.py`).

Raises `ValueError` from the checks; the loader turns it into `ConfigError`.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

__all__ = ["choice", "positive", "setting"]


def setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    """A field with a default and the sentence that documents it; `secret`: its value
    may hold a password, which `posthorn config show` masks."""
    metadata = {"doc": doc, "secret": secret}
    if isinstance(default, list | dict):
        factory = default.copy
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def choice(section: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    """`section.name` must be one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"{section}.{name} must be one of {', '.join(allowed)}; got {value!r}")


def positive(section: str, name: str, value: float, *, zero: bool = False) -> None:
    """`section.name` must be > 0 (or >= 0 with `zero`)."""
    if value < 0 or (value == 0 and not zero):
        raise ValueError(f"{section}.{name} must be {'>= 0' if zero else '> 0'}; got {value}")
