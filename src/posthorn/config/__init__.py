"""Configuration: TOML file -> frozen dataclasses (see schema.py for every setting)."""

from posthorn.config.loader import ConfigError, load_text
from posthorn.config.render import render
from posthorn.config.resolve import default_data_dir, load, resolve
from posthorn.config.schema import (
    AuthConfig,
    Config,
    DkimConfig,
    DnsConfig,
    LimitsConfig,
    LocalConfig,
    LogConfig,
    MailAuthConfig,
    QueueConfig,
    RelayConfig,
    ServerConfig,
    SmtpConfig,
    SubmissionConfig,
    TlsConfig,
)

__all__ = [
    "AuthConfig",
    "Config",
    "ConfigError",
    "DkimConfig",
    "DnsConfig",
    "LimitsConfig",
    "LocalConfig",
    "LogConfig",
    "MailAuthConfig",
    "QueueConfig",
    "RelayConfig",
    "ServerConfig",
    "SmtpConfig",
    "SubmissionConfig",
    "TlsConfig",
    "default_data_dir",
    "load",
    "load_text",
    "render",
    "resolve",
]
