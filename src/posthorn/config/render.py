"""Writing a config back as documented TOML (`posthorn config show`).

Owns: the TOML form of the dataclass tree with each setting's documentation as a comment,
and masking the passwords that secret settings hold (a URL's `user:password@`, a
`user:password` credential), so that showing a config never shows them. Does not own
reading TOML (the stdlib `tomllib` reads; it does not write).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

__all__ = ["render"]

_MASK = "********"
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^@/]*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)  # libpq URL parameter


def masked(value: Any) -> Any:
    """A secret setting's value with its passwords replaced by asterisks."""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if "://" in value:
        value = _URL_PASSWORD.sub(rf"\1:{_MASK}@", value)
        return _QUERY_PASSWORD.sub(rf"\1{_MASK}", value)
    user, colon, _ = value.partition(":")
    return f"{user}:{_MASK}" if colon else value


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for the characters we emit.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r}")


def render(config: Any, *, docs: bool = True) -> str:
    """TOML for a Config: one table per section, each key with its doc comment."""
    out: list[str] = []
    for section in dataclasses.fields(config):
        table = getattr(config, section.name)
        out.append(f"[{section.name}]")
        if isinstance(table, dict):
            # A section that is a table of free keys ([routes]): its doc, then its entries.
            doc = section.metadata.get("doc")
            if docs and doc:
                out.append(f"# {doc}")
            if section.metadata.get("secret"):
                table = masked(table)
            out.extend(f"{json.dumps(k)} = {_value(v)}" for k, v in table.items())
            out.append("")
            continue
        for field in dataclasses.fields(table):
            doc = field.metadata.get("doc")
            if docs and doc:
                out.append(f"# {doc}")
            value = getattr(table, field.name)
            if field.metadata.get("secret"):
                value = masked(value)
            out.append(f"{field.name} = {_value(value)}")
        out.append("")
    return "\n".join(out)
