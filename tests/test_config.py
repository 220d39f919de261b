"""Config: strict TOML into dataclasses, documented defaults, exit 78 on errors."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from posthorn.config import Config, ConfigError, load_text, render, resolve
from support.server import env, posthorn_cmd


def test_defaults_render_as_toml_that_loads_back() -> None:
    text = render(Config())
    assert load_text(Config, text) == Config()
    assert "# Largest message in octets" in text


def test_every_setting_is_documented() -> None:
    text = render(Config())
    for line_no, line in enumerate(text.splitlines()):
        if " = " in line and not line.startswith("#"):
            assert text.splitlines()[line_no - 1].startswith("# "), f"undocumented: {line}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp]\nmax_mesage_size = 10\n", "smtp.max_mesage_size: unknown key"),
        ("[nosuch]\nx = 1\n", "nosuch: unknown key"),
        ("[smtp]\nmax_recipients = 'many'\n", "smtp.max_recipients: expected an integer"),
        ("[smtp]\nreject_nul = 1\n", "smtp.reject_nul: expected true or false"),
        ("[server]\nlisten = '127.0.0.1:25'\n", "server.listen: expected a list"),
        ("[smtp]\nbare_line_endings = 'ignore'\n", "smtp.bare_line_endings must be one of"),
        ("[relay]\ntrusted_networks = ['10.0.0.0/33']\n", "relay.trusted_networks"),
        ("[smtp\n", "line 1"),
    ],
)
def test_errors_name_their_dotted_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_text(Config, text)


def test_resolve_fills_computed_defaults(tmp_path: Path) -> None:
    config = resolve(
        load_text(Config, '[server]\nhostname = "mx.example.org"\n'), data_dir=str(tmp_path)
    )
    assert config.server.data_dir == str(tmp_path)
    assert config.local.domains == ("localhost", "mx.example.org")
    assert resolve(Config(), listen=("[::1]:2526",)).server.listen == ("[::1]:2526",)


def test_cli_exit_78_on_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nmax_mesage_size = 10\n")
    result = subprocess.run(
        posthorn_cmd("serve", "--config", str(bad)), capture_output=True, env=env(), timeout=30
    )
    assert result.returncode == 78
    assert b"smtp.max_mesage_size: unknown key" in result.stderr


def test_cli_show_defaults_is_valid_toml() -> None:
    result = subprocess.run(
        posthorn_cmd("config", "show", "--defaults"), capture_output=True, env=env(), timeout=30
    )
    assert result.returncode == 0
    parsed = tomllib.loads(result.stdout.decode())
    assert parsed["server"]["listen"] == ["127.0.0.1:2525"]


def test_cli_show_masks_passwords(tmp_path: Path) -> None:
    """`config show` is pasted into bug reports: a password in the PostgreSQL URL or in a
    relay credential never appears, the rest of the value does."""
    path = tmp_path / "posthorn.toml"
    path.write_text(
        '[queue]\nstore = "postgresql://mail:s3cret@db.example/posthorn?password=s3cret2"\n'
        '[smtp_client.credentials]\n"relay.example" = "joe:pa:ss"\n'
    )
    result = subprocess.run(
        posthorn_cmd("config", "show", "--config", str(path)),
        capture_output=True,
        env=env(),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert b"s3cret" not in result.stdout
    assert b"pa:ss" not in result.stdout
    parsed = tomllib.loads(result.stdout.decode())
    assert parsed["queue"]["store"] == (
        "postgresql://mail:********@db.example/posthorn?password=********"
    )
    assert parsed["smtp_client"]["credentials"] == {"relay.example": "joe:********"}
