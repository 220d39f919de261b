"""Configuration: TOML file -> frozen dataclasses (see schema.py for every setting)."""

from posthorn.config.loader import ConfigError, load_text
from posthorn.config.render import render
from posthorn.config.resolve import default_data_dir, load, resolve
from posthorn.config.schema import (
    ClusterConfig,
    Config,
    DnsConfig,
    LocalConfig,
    LogConfig,
    QueueConfig,
    RelayConfig,
    ServerConfig,
    SmtpClientConfig,
    SmtpConfig,
)

__all__ = [
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DnsConfig",
    "LocalConfig",
    "LogConfig",
    "QueueConfig",
    "RelayConfig",
    "ServerConfig",
    "SmtpClientConfig",
    "SmtpConfig",
    "default_data_dir",
    "load",
    "load_text",
    "render",
    "resolve",
]
