"""Computed defaults: the values that depend on the machine, filled in once at start-up.

Owns: the host name (FQDN), the default data directory, the default local domains, the
AUTH password file's path, the config file's default location and the command-line
overrides. Does not own parsing.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

from posthorn.config.loader import ConfigError, load_file
from posthorn.config.schema import Config

__all__ = ["default_data_dir", "load", "password_file", "resolve"]


def default_data_dir() -> Path:
    """$POSTHORN_DATA_DIR, else $XDG_DATA_HOME/posthorn, else ~/.local/share/posthorn."""
    env = os.environ.get("POSTHORN_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "posthorn"


def resolve(
    config: Config,
    *,
    listen: tuple[str, ...] = (),
    data_dir: str | None = None,
    hold: bool | None = None,
) -> Config:
    """Apply overrides and fill every '' or empty default with its computed value."""
    server = config.server
    hostname = server.hostname or socket.getfqdn()
    server = dataclasses.replace(
        server,
        hostname=hostname,
        listen=listen or server.listen,
        data_dir=str(Path(data_dir or server.data_dir or default_data_dir()).absolute()),
        hold=server.hold if hold is None else hold,
    )
    local = config.local
    if not local.domains:
        domains = ("localhost",) if hostname == "localhost" else ("localhost", hostname)
        local = dataclasses.replace(local, domains=domains)
    return dataclasses.replace(config, server=server, local=local)


def password_file(config: Config) -> str:
    """The AUTH password file of a resolved config, with {data_dir} expanded."""
    return config.auth.password_file.replace("{data_dir}", config.server.data_dir)


def load(path: str | None) -> Config:
    """Load the config file named on the command line or in $POSTHORN_CONFIG, if any.

    With neither, the built-in defaults apply: `posthorn serve` needs no config file.
    """
    chosen = path or os.environ.get("POSTHORN_CONFIG")
    if not chosen:
        return Config()
    file = Path(chosen)
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    return load_file(Config, file)
