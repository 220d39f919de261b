"""`posthorn aliases check FILE`, run as a real command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.server import env, posthorn_cmd


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        posthorn_cmd("aliases", "check", str(path)),
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )


def test_good_file(tmp_path: Path) -> None:
    members = tmp_path / "members"
    members.write_text("alice, bob\n")
    aliases = tmp_path / "aliases"
    aliases.write_text(f"staff: alice, bob\nall: :include:{members}\n")
    result = check(aliases)
    assert result.returncode == 0
    assert result.stdout == f"{aliases}: 2 aliases, ok\n"


def test_problems_exit_65_naming_lines_and_includes(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text(f"staff: alice\nstaff: bob\nall: :include:{tmp_path}/nope\n")
    result = check(aliases)
    assert result.returncode == 65  # EX_DATAERR
    assert result.stdout.splitlines() == [
        f"{aliases}: line 2: duplicate alias 'staff' (first on line 1)",
        f"{tmp_path}/nope: cannot read: No such file or directory",
        f"{aliases}: 2 problem(s), 2 aliases usable",
    ]


def test_missing_file_exit_66(tmp_path: Path) -> None:
    result = check(tmp_path / "absent")
    assert result.returncode == 66  # EX_NOINPUT
    assert "No such file or directory" in result.stderr
