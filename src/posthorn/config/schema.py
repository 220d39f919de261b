"""The configuration schema: one frozen dataclass per TOML section, defaults in code.

Owns: every setting's name, type, default and one-line documentation (rendered by
`posthorn config show --defaults`), and the checks of a single value's range. Does not own
reading files (`loader.py`) or filling the computed defaults (`resolve.py`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Config",
    "DnsConfig",
    "LocalConfig",
    "LogConfig",
    "QueueConfig",
    "RelayConfig",
    "ServerConfig",
    "SmtpConfig",
    "SubmitConfig",
    "setting",
]


def setting(default: Any, doc: str) -> Any:
    """A field with a default and the sentence that documents it."""
    if isinstance(default, list | dict):
        factory = default.copy
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def _choice(section: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{section}.{name} must be one of {', '.join(allowed)}; got {value!r}")


def _positive(section: str, name: str, value: float, *, zero: bool = False) -> None:
    if value < 0 or (value == 0 and not zero):
        raise ValueError(f"{section}.{name} must be {'>= 0' if zero else '> 0'}; got {value}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hostname: str = setting(
        "", "Name in the greeting and Received headers; '' = this host's FQDN."
    )
    listen: tuple[str, ...] = setting(
        ("127.0.0.1:2525",), "Addresses to listen on, HOST:PORT ([v6]:PORT for IPv6)."
    )
    data_dir: str = setting(
        "", "Queue, mailboxes and state; '' = $POSTHORN_DATA_DIR or ~/.local/share/posthorn."
    )
    hold: bool = setting(False, "Keep accepted mail on hold until `posthorn queue release`.")
    max_connections: int = setting(1000, "Concurrent SMTP sessions; more get 421 4.7.0.")

    def __post_init__(self) -> None:
        _positive("server", "max_connections", self.max_connections)
        if not self.listen:
            raise ValueError("server.listen needs at least one address")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    banner: str = setting("ESMTP Posthorn", "Text after the host name in the 220 greeting.")
    max_message_size: int = setting(
        36_700_160, "Largest message in octets, advertised as SIZE (RFC 1870); 0 = no limit."
    )
    max_recipients: int = setting(1000, "Recipients per message; more get 452 4.5.3.")
    idle_timeout: float = setting(300.0, "Seconds to wait for a command (RFC 5321 4.5.3.2).")
    data_timeout: float = setting(180.0, "Seconds to wait for each block of message data.")
    max_command_line: int = setting(512, "Octets per command line, CRLF included.")
    max_text_line: int = setting(
        1000, "Octets per message line, CRLF included (RFC 5321 4.5.3.1.6); 0 = no limit."
    )
    bare_line_endings: str = setting(
        "reject", "A bare CR or LF in DATA: 'reject' (550 5.6.0) or 'normalise' to CRLF."
    )
    reject_nul: bool = setting(True, "Refuse messages that contain NUL octets.")
    max_received_headers: int = setting(
        100, "Hop limit: more Received headers than this is a loop (554 5.4.6)."
    )
    reverse_dns: bool = setting(True, "Look up the client's host name for Received headers.")

    def __post_init__(self) -> None:
        _choice("smtp", "bare_line_endings", self.bare_line_endings, ("reject", "normalise"))
        _positive("smtp", "max_message_size", self.max_message_size, zero=True)
        _positive("smtp", "max_recipients", self.max_recipients)
        _positive("smtp", "idle_timeout", self.idle_timeout)
        _positive("smtp", "data_timeout", self.data_timeout)
        _positive("smtp", "max_text_line", self.max_text_line, zero=True)
        if self.max_command_line < 512:
            raise ValueError("smtp.max_command_line must be >= 512 (RFC 5321 4.5.3.1.4)")


@dataclass(frozen=True, slots=True)
class LocalConfig:
    domains: tuple[str, ...] = setting(
        (), "Domains delivered here; empty = 'localhost' and the host name."
    )
    users: tuple[str, ...] = setting((), "Known local users (used when the next is false).")
    accept_any_local_user: bool = setting(
        True, "Accept any local part in a local domain (each gets its own Maildir)."
    )
    maildir: str = setting(
        "{data_dir}/mail/{user}/Maildir", "Maildir path; {data_dir} and {user} are replaced."
    )


@dataclass(frozen=True, slots=True)
class QueueConfig:
    store: str = setting("sqlite", "Queue store: 'sqlite' (under data_dir).")
    retry: str = setting("rfc1123", "Retry profile: 'rfc1123' or 'fast'.")
    lease: float = setting(600.0, "Seconds a claimed message is reserved for one delivery run.")
    delivery_concurrency: int = setting(20, "Messages delivered at the same time.")

    def __post_init__(self) -> None:
        _choice("queue", "retry", self.retry, ("rfc1123", "fast"))
        _positive("queue", "lease", self.lease)
        _positive("queue", "delivery_concurrency", self.delivery_concurrency)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    trusted_networks: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128"),
        "Clients that may relay to any domain without AUTH; [] trusts no one.",
    )

    def __post_init__(self) -> None:
        for net in self.trusted_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"relay.trusted_networks: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DnsConfig:
    nameservers: tuple[str, ...] = setting(
        (), "Resolvers as HOST or HOST:PORT; empty = those in /etc/resolv.conf."
    )
    timeout: float = setting(10.0, "Seconds for one DNS lookup, all retries included.")

    def __post_init__(self) -> None:
        _positive("dns", "timeout", self.timeout)
        for server in self.nameservers:
            port = server.rpartition(":")[2] if server.count(":") == 1 else ""
            if port and not port.isdigit():
                raise ValueError(f"dns.nameservers: bad port in {server!r}")


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = setting("info", "debug (SMTP transcripts), info, warning or error.")

    def __post_init__(self) -> None:
        _choice("log", "level", self.level, ("debug", "info", "warning", "error"))


@dataclass(frozen=True, slots=True)
class SubmitConfig:
    """How `posthorn send` (the user agent) submits mail over SMTP."""

    server: str = setting("127.0.0.1:2525", "Where `posthorn send` submits mail, HOST:PORT.")
    from_address: str = setting("", "From address of `posthorn send`; '' = login@server.hostname.")
    from_name: str = setting("", "Display name in From; '' = none.")
    helo: str = setting("", "Name given in EHLO; '' = server.hostname.")
    starttls: str = setting(
        "auto", "STARTTLS (RFC 3207): 'auto' when offered, 'require', or 'never'."
    )
    tls_verify: bool = setting(True, "Verify the server's certificate and host name.")
    ca_file: str = setting("", "PEM file of CA certificates to trust; '' = the system's.")
    auth_user: str = setting("", "User name for AUTH (RFC 4954); '' = no AUTH.")
    auth_password_file: str = setting(
        "", "File holding the AUTH password (first line); keep it mode 0600."
    )
    timeout: float = setting(60.0, "Seconds to wait for each reply of the server.")

    def __post_init__(self) -> None:
        _choice("submit", "starttls", self.starttls, ("auto", "require", "never"))
        _positive("submit", "timeout", self.timeout)
        host, sep, port = self.server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"submit.server must be HOST:PORT; got {self.server!r}")
        if self.auth_user and not self.auth_password_file:
            raise ValueError("submit.auth_user needs submit.auth_password_file")


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    submit: SubmitConfig = field(default_factory=SubmitConfig)
