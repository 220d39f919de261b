"""Configuration: TOML file -> frozen dataclasses (schema.py: the sections and where each
lives; the section modules: every setting with its default and documentation)."""

from posthorn.config.loader import ConfigError, load_text
from posthorn.config.render import render
from posthorn.config.resolve import default_data_dir, load, password_file, resolve
from posthorn.config.schema import (
    AliasesConfig,
    AuthConfig,
    ClusterConfig,
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
    SmtpClientConfig,
    SmtpConfig,
    SubmissionConfig,
    SubmitConfig,
    TlsConfig,
    VerifyConfig,
)

__all__ = [
    "AliasesConfig",
    "AuthConfig",
    "ClusterConfig",
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
    "SmtpClientConfig",
    "SmtpConfig",
    "SubmissionConfig",
    "SubmitConfig",
    "TlsConfig",
    "VerifyConfig",
    "default_data_dir",
    "load",
    "load_text",
    "password_file",
    "render",
    "resolve",
]
