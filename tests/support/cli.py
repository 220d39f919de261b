"""Running `posthorn` subcommands in a subprocess against a test server, in text mode.

Like `Server.cli`, plus an environment to add to (DEAD, TZ, PYTHONIOENCODING, HOME) and
text input and output; `queue_list` reads the queue as data.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from support.server import Server, env, posthorn_cmd


def run(
    server: Server,
    *args: str,
    stdin: str = "",
    extra_env: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> subprocess.CompletedProcess[str]:
    cmd = posthorn_cmd(
        *args, "--config", str(server.config_path), "--data-dir", str(server.data_dir)
    )
    environment = env() | {"TZ": "UTC"} | (extra_env or {})
    return subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding=encoding,
        env=environment,
        timeout=60,
    )


def queue_list(server: Server) -> list[dict[str, Any]]:
    """`posthorn queue list --json`: the queued messages as data."""
    result = run(server, "queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data
