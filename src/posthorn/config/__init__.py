"""Configuration: TOML file -> frozen dataclasses (see schema.py for every setting)."""

from posthorn.config.loader import ConfigError, load_text
from posthorn.config.render import render
from posthorn.config.resolve import default_data_dir, load, resolve
from posthorn.config.schema import (
    AliasesConfig,
    Config,
    DnsConfig,
    LocalConfig,
    LogConfig,
    QueueConfig,
    RelayConfig,
    ServerConfig,
    SmtpClientConfig,
    SmtpConfig,
    VerifyConfig,
)

__all__ = [
    "AliasesConfig",
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
    "VerifyConfig",
    "default_data_dir",
    "load",
    "load_text",
    "render",
    "resolve",
]
