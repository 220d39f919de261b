"""Configuration: TOML file -> frozen dataclasses (see schema.py for every setting)."""

from posthorn.config.loader import ConfigError, load_text
from posthorn.config.render import render
from posthorn.config.resolve import default_data_dir, load, resolve
from posthorn.config.schema import (
    Config,
    DnsConfig,
    LocalConfig,
    LogConfig,
    QueueConfig,
    RelayConfig,
    ServerConfig,
    SmtpConfig,
    SubmitConfig,
)

__all__ = [
    "Config",
    "ConfigError",
    "DnsConfig",
    "LocalConfig",
    "LogConfig",
    "QueueConfig",
    "RelayConfig",
    "ServerConfig",
    "SmtpConfig",
    "SubmitConfig",
    "default_data_dir",
    "load",
    "load_text",
    "render",
    "resolve",
]
