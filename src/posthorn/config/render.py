"""Writing a config back as documented TOML (`posthorn config show`).

Owns: the TOML form of the dataclass tree with each setting's documentation as a comment.
Does not own reading TOML (the stdlib `tomllib` reads; it does not write).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

__all__ = ["render"]


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
            out.extend(f"{json.dumps(k)} = {_value(v)}" for k, v in table.items())
            out.append("")
            continue
        for field in dataclasses.fields(table):
            doc = field.metadata.get("doc")
            if docs and doc:
                out.append(f"# {doc}")
            out.append(f"{field.name} = {_value(getattr(table, field.name))}")
        out.append("")
    return "\n".join(out)
