"""Turning TOML text into the frozen config dataclasses, strictly.

Owns: the generic walk from a parsed TOML table to a dataclass tree, type checks on each
value, and the error for an unknown key, which names its dotted path
(`smtp.max_mesage_size: unknown key`). Does not own the schema (`schema.py`) or defaults.

Raises `ConfigError` for every problem; the CLI turns it into exit code 78 (EX_CONFIG).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ConfigError", "from_table", "load_text"]

T = TypeVar("T")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the dotted path of the problem."""


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table")
        return from_table(hint, value, path)  # type: ignore[arg-type]
    if origin in (types.UnionType, typing.Union):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _convert(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list")
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table")
        return {str(k): _convert(v, value_type, f"{path}.{k}") for k, v in value.items()}
    if hint is type(None):
        raise ConfigError(f"{path}: expected nothing")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r}")
    return value


def from_table(cls: type[T], table: dict[str, Any], path: str = "") -> T:
    """Build dataclass `cls` from a TOML table; keys may use '-' or '_'."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        dotted = f"{path}.{key}" if path else key
        if name not in fields or not fields[name].init:
            raise ConfigError(f"{dotted}: unknown key")
        kwargs[name] = _convert(value, hints[name], dotted)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a range check in the schema; it names its own key
        raise ConfigError(str(exc)) from exc


def load_text(cls: type[T], text: str, origin: str = "config") -> T:
    """Parse TOML text into `cls`. Raises ConfigError naming `origin` for syntax errors."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
    return from_table(cls, table)


def load_file(cls: type[T], path: Path) -> T:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    return load_text(cls, text, str(path))
