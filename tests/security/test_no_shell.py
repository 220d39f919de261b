"""No shell ever sees a user-controlled string: Posthorn's code never starts a shell."""

from __future__ import annotations

import ast
from pathlib import Path

import posthorn

PKG = Path(posthorn.__file__).resolve().parent

_SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
}


def _dotted(node: ast.expr) -> tuple[str, str] | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    return None


def test_no_module_starts_a_shell() -> None:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            if name in _SHELL_CALLS or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "create_subprocess_shell"
            ):
                found.append(f"{path.relative_to(PKG)}:{node.lineno} {name}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{path.relative_to(PKG)}:{node.lineno} shell=")
    assert found == []
