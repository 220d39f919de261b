"""The dependency rules of docs/architecture.md, checked by walking imports with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import posthorn

PKG = Path(posthorn.__file__).resolve().parent

# smtp/ is sans-I/O: the stdlib minus anything that does I/O, plus posthorn.address.
_SMTP_FORBIDDEN = {"asyncio", "socket", "ssl", "time", "os", "selectors", "subprocess"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_smtp_core_does_no_io() -> None:
    for path in _modules("smtp"):
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in _SMTP_FORBIDDEN, f"{path.name} imports {name}"
            if top == "posthorn":
                assert name.startswith(("posthorn.smtp", "posthorn.address")), (
                    f"{path.name} imports {name}"
                )


def test_pure_modules_stay_pure() -> None:
    pure = ["address.py", "envelope.py", "outcome.py", "queue/model.py", "queue/schedule.py"]
    for rel in pure:
        for name in _imports(PKG / rel):
            assert name.split(".")[0] not in {"asyncio", "socket", "sqlite3", "subprocess"}, (
                f"{rel} imports {name}"
            )


def test_nothing_imports_the_cli_or_daemon() -> None:
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("cli/") or rel in ("daemon.py", "__main__.py"):
            continue
        for name in _imports(path):
            assert not name.startswith(("posthorn.cli", "posthorn.daemon")), f"{rel}: {name}"


def test_every_module_has_a_docstring() -> None:
    for path in PKG.rglob("*.py"):
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no docstring"
