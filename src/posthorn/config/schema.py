"""The configuration schema: the tree of sections, one frozen dataclass per TOML table,
defaults in code.

Owns: `Config`, which sections exist and in which order (the order of `posthorn config
show`), and the checks that span the whole tree. Each section lives in the module of
its subject: `server.py` ([server], [smtp], [submission], [limits], [log]),
`local.py` ([local], [aliases], [verify]), `queue.py` ([queue], [cluster]),
`outbound.py` ([smtp_client], [dns], [routes]), `security.py` ([tls], [auth], [relay],
[mailauth], [dkim]) and `submit.py` ([submit]); `fields.py` has `setting(default, doc)`.
Does not own reading files (`loader.py`) or filling the computed defaults
(`resolve.py`).

Raises `ValueError` from a section's constructor for a value out of range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posthorn.config.fields import setting
from posthorn.config.local import AliasesConfig, LocalConfig, VerifyConfig
from posthorn.config.outbound import DnsConfig, SmtpClientConfig, check_routes
from posthorn.config.queue import ClusterConfig, QueueConfig
from posthorn.config.security import (
    AuthConfig,
    DkimConfig,
    MailAuthConfig,
    RelayConfig,
    TlsConfig,
)
from posthorn.config.server import (
    LimitsConfig,
    LogConfig,
    ServerConfig,
    SmtpConfig,
    SubmissionConfig,
)
from posthorn.config.submit import SubmitConfig

__all__ = [
    "AliasesConfig",
    "AuthConfig",
    "ClusterConfig",
    "Config",
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
    "setting",
]


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    smtp_client: SmtpClientConfig = field(default_factory=SmtpClientConfig)
    # [routes]: domain (or "*" for everything else) -> "smtp:[host]:port" | "smtp:host:port".
    routes: dict[str, str] = setting(
        {}, 'Transport table: domain or "*" -> "smtp:[host]:port" (no MX lookup)'
    )
    aliases: AliasesConfig = field(default_factory=AliasesConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    mailauth: MailAuthConfig = field(default_factory=MailAuthConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    submit: SubmitConfig = field(default_factory=SubmitConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        check_routes(self.routes)
