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
    max_connections: int = setting(
        1000, "Concurrent SMTP sessions (per worker); more get 421 4.7.0."
    )
    workers: int = setting(
        1, "Server processes sharing the ports (SO_REUSEPORT) and queue; 0 = one per CPU."
    )
    user: str = setting(
        "", "When started as root: drop to this user after binding the listeners; '' = stay."
    )
    group: str = setting("", "Group to drop to with `user`; '' = the user's login group.")

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
    virtual_domains: tuple[str, ...] = setting(
        (), "Domains with users of their own, listed in `users` as name@domain."
    )
    catch_all: dict[str, str] = setting(
        {}, "Per domain, the user that gets mail for unknown names: { 'example.net' = 'info' }."
    )
    extension_delimiter: str = setting(
        "+", "Address extensions: user+tag@domain is delivered to user; '' = none."
    )
    mailbox_format: str = setting("maildir", "Mailbox format of local users: maildir or mbox.")
    mailbox_formats: dict[str, str] = setting(
        {}, "Per-user mailbox format overriding the default: { 'carol' = 'mbox' }."
    )
    mbox: str = setting(
        "{data_dir}/mail/{user}/mbox", "mbox path; {data_dir} and {user} are replaced."
    )
    full_names: dict[str, str] = setting(
        {}, "Full names shown by VRFY and EXPN: { 'alice' = 'Alice Liddell' }."
    )
    system_users: bool = setting(
        False, "This machine's accounts are users of the local domains (~/.forward, GECOS)."
    )
    passwd: str = setting(
        "", "Account database for system_users: '' = the system's (NSS), or a passwd file."
    )
    mailbox: str = setting(
        "", "Mailbox server: '' = files here; 'lmtp:HOST:PORT' or 'lmtp:unix:/path' (RFC 2033)."
    )

    def __post_init__(self) -> None:
        formats = ("maildir", "mbox")
        _choice("local", "mailbox_format", self.mailbox_format, formats)
        for user, fmt in self.mailbox_formats.items():
            _choice("local", f"mailbox_formats.{user}", fmt, formats)
        virtual = {d.lower().rstrip(".") for d in self.virtual_domains}
        both = virtual & {d.lower().rstrip(".") for d in self.domains}
        if both:
            raise ValueError(
                f"local: {', '.join(sorted(both))} in both domains and virtual_domains"
            )
        for user in self.users:
            if "@" in user and user.rpartition("@")[2].lower() not in virtual:
                raise ValueError(f"local.users: {user!r} is not in one of local.virtual_domains")
        delimiter = self.extension_delimiter
        if len(delimiter) > 1 or (delimiter and delimiter in '@."\\ '):
            raise ValueError(
                f'local.extension_delimiter: one character (not @ . " \\); got {delimiter!r}'
            )
        if self.mailbox:
            # Imported here: the grammar lives with the LMTP transport that uses it.
            from posthorn.delivery.lmtp import parse_lmtp_target

            try:
                parse_lmtp_target(self.mailbox)
            except ValueError as exc:
                raise ValueError(f"local.mailbox: {exc}") from exc


@dataclass(frozen=True, slots=True)
class QueueConfig:
    store: str = setting(
        "sqlite",
        "Queue store: 'sqlite' (under data_dir) or 'postgresql://USER@HOST/DB' (shared by nodes).",
    )
    retry: str = setting("rfc1123", "Retry profile: 'rfc1123' or 'fast'.")
    lease: float = setting(600.0, "Seconds a claimed message is reserved for one delivery run.")
    delivery_concurrency: int = setting(100, "Messages being delivered at the same time.")
    retry_delays: tuple[float, ...] = setting(
        (), "Explicit retry delays in seconds (the last repeats); empty = the retry profile's."
    )
    max_queue_lifetime: float = setting(
        0.0, "Seconds after arrival to give up and bounce; 0 = the retry profile's."
    )
    delay_warning: float = setting(
        14400.0, "Seconds after arrival to send a delay DSN (Action: delayed); 0 = never."
    )

    def __post_init__(self) -> None:
        _choice("queue", "retry", self.retry, ("rfc1123", "fast"))
        for delay in self.retry_delays:
            _positive("queue", "retry_delays", delay)
        _positive("queue", "max_queue_lifetime", self.max_queue_lifetime, zero=True)
        _positive("queue", "delay_warning", self.delay_warning, zero=True)
        _positive("queue", "lease", self.lease)
        _positive("queue", "delivery_concurrency", self.delivery_concurrency)
        if self.store != "sqlite" and not self.store.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"queue.store must be 'sqlite' or a postgresql:// URL; got {self.store!r}"
            )


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
class TlsConfig:
    cert: str = setting("", "PEM certificate (chain) for STARTTLS and implicit TLS; '' = no TLS.")
    key: str = setting("", "PEM private key of `cert`.")
    min_version: str = setting("TLSv1.2", "Oldest TLS version accepted: 'TLSv1.2' or 'TLSv1.3'.")
    handshake_timeout: float = setting(30.0, "Seconds a client has to complete a TLS handshake.")

    def __post_init__(self) -> None:
        _choice("tls", "min_version", self.min_version, ("TLSv1.2", "TLSv1.3"))
        _positive("tls", "handshake_timeout", self.handshake_timeout)
        if bool(self.cert) != bool(self.key):
            raise ValueError("tls.cert and tls.key must be given together")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    password_file: str = setting(
        "{data_dir}/passwd",
        "SMTP AUTH users (`posthorn passwd USER`); readable by server.user; {data_dir} expands.",
    )
    mechanisms: tuple[str, ...] = setting(("PLAIN", "LOGIN"), "SASL mechanisms offered.")
    allow_plaintext_loopback: bool = setting(
        False, "Offer AUTH without TLS to loopback clients (never to anyone else)."
    )
    max_failures: int = setting(
        5, "Failed AUTH attempts per client IP within failure_window before 421 4.7.0."
    )
    failure_window: float = setting(600.0, "Seconds a failed AUTH attempt is remembered.")
    failure_delay: float = setting(
        1.0, "Seconds before each 535, times the client's recent failures (capped at 10 s)."
    )

    def __post_init__(self) -> None:
        for mech in self.mechanisms:
            _choice("auth", "mechanisms", mech, ("PLAIN", "LOGIN"))
        _positive("auth", "max_failures", self.max_failures)
        _positive("auth", "failure_window", self.failure_window)
        _positive("auth", "failure_delay", self.failure_delay, zero=True)


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    listen: tuple[str, ...] = setting(
        (), "Submission listeners (RFC 6409, port 587): STARTTLS, then AUTH before MAIL."
    )
    tls_listen: tuple[str, ...] = setting(
        (), "Implicit-TLS submission listeners (RFC 8314, port 465): AUTH before MAIL."
    )


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_connections_per_ip: int = setting(
        20, "Concurrent sessions from one client IP; more get 421 4.7.0; 0 = no limit."
    )
    messages_per_minute: int = setting(
        120, "MAIL commands per client IP per minute; more get 450 4.7.1; 0 = no limit."
    )
    exempt_trusted: bool = setting(
        True, "The per-IP limits above do not apply to relay.trusted_networks."
    )
    max_errors: int = setting(20, "Errors (5xx replies) in one session before 421 and close.")
    tarpit_after: int = setting(
        3, "Refused RCPTs in a session after which each further refused RCPT is delayed."
    )
    tarpit_delay: float = setting(1.0, "Seconds of that delay (the tarpit).")
    session_timeout: float = setting(
        1800.0, "Seconds a whole session may last, however active (slowloris); then 421."
    )
    max_headers: int = setting(1000, "Header fields per message; more get 552 5.3.4.")
    max_header_size: int = setting(
        262_144, "Octets in a message's header section; more get 552 5.3.4."
    )

    def __post_init__(self) -> None:
        for name in ("max_connections_per_ip", "messages_per_minute", "tarpit_after"):
            _positive("limits", name, getattr(self, name), zero=True)
        for name in ("max_errors", "session_timeout", "max_headers", "max_header_size"):
            _positive("limits", name, getattr(self, name))
        _positive("limits", "tarpit_delay", self.tarpit_delay, zero=True)


_ACTIONS = ("none", "tag", "reject")


@dataclass(frozen=True, slots=True)
class MailAuthConfig:
    spf: str = setting("tag", "SPF (RFC 7208) of inbound mail: 'none', 'tag' or 'reject' on fail.")
    dkim: str = setting("tag", "DKIM (RFC 6376) verification: 'none', 'tag' or 'reject' on fail.")
    dmarc: str = setting(
        "tag", "DMARC (RFC 7489): 'none', 'tag' or 'reject' when the policy says reject."
    )
    authserv_id: str = setting("", "authserv-id of Authentication-Results; '' = host name.")
    check_trusted: bool = setting(
        False, "Also check mail from trusted networks and authenticated clients."
    )

    def __post_init__(self) -> None:
        for name in ("spf", "dkim", "dmarc"):
            _choice("mailauth", name, getattr(self, name), _ACTIONS)


@dataclass(frozen=True, slots=True)
class DkimConfig:
    keys: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "doc": "Outbound signing: domain = PEM private key file (`posthorn dkim keygen`)."
        },
    )
    selector: str = setting("posthorn", "Selector (s=) used for every domain in `keys`.")
    selectors: dict[str, str] = field(
        default_factory=dict, metadata={"doc": "Per-domain selectors overriding `selector`."}
    )
    headers: tuple[str, ...] = setting(
        (
            "From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
            "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "In-Reply-To",
            "References",
        ),
        "Header fields to sign (From is always signed).",
    )  # fmt: skip


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


_TLS_POLICIES = ("none", "opportunistic", "required", "verify")


@dataclass(frozen=True, slots=True)
class SmtpClientConfig:
    helo_name: str = setting("", "Name sent in EHLO/HELO to peers; '' = server.hostname.")
    port: int = setting(25, "TCP port of mail exchangers found through DNS.")
    tls: str = setting(
        "opportunistic",
        "STARTTLS toward peers: none, opportunistic, required, or verify (certificate checked).",
    )
    tls_policy: dict[str, str] = setting(
        {}, "Per-destination TLS policy: domain or relay host -> none|opportunistic|..."
    )
    tls_ca_file: str = setting("", "CA bundle for 'verify'; '' = the system's trust store.")
    credentials: dict[str, str] = setting(
        {}, "AUTH toward relay hosts: host (as in [routes]) -> 'user:password'."
    )
    auth_without_tls: bool = setting(False, "Send AUTH credentials over a connection without TLS.")
    connect_timeout: float = setting(30.0, "Seconds to wait for a TCP connection.")
    greeting_timeout: float = setting(
        300.0, "Seconds to wait for the 220 greeting (RFC 5321 4.5.3.2.1)."
    )
    command_timeout: float = setting(
        300.0, "Seconds for replies to EHLO, STARTTLS, AUTH, RSET, QUIT."
    )
    mail_timeout: float = setting(300.0, "Seconds for the reply to MAIL (RFC 5321 4.5.3.2.2).")
    rcpt_timeout: float = setting(300.0, "Seconds for the reply to RCPT (RFC 5321 4.5.3.2.3).")
    data_timeout: float = setting(120.0, "Seconds for the 354 reply to DATA (RFC 5321 4.5.3.2.4).")
    data_block_timeout: float = setting(180.0, "Seconds to send each block of data (4.5.3.2.5).")
    data_end_timeout: float = setting(600.0, "Seconds for the reply to the final dot (4.5.3.2.6).")
    max_connections: int = setting(100, "Outgoing SMTP connections in use at once, all peers.")
    destination_concurrency: int = setting(
        20, "Outgoing connections in use at once per destination."
    )
    connection_reuse_time: float = setting(
        5.0, "Seconds an idle connection waits for the next message to its destination; 0 = off."
    )
    connection_reuse_limit: int = setting(100, "Messages sent over one connection at most.")

    def __post_init__(self) -> None:
        _choice("smtp_client", "tls", self.tls, _TLS_POLICIES)
        for key, value in self.tls_policy.items():
            _choice("smtp_client", f"tls_policy.{key}", value, _TLS_POLICIES)
        for key, value in self.credentials.items():
            if ":" not in value:
                raise ValueError(f"smtp_client.credentials.{key} must be 'user:password'")
        if not 0 < self.port < 65536:
            raise ValueError(f"smtp_client.port must be a TCP port; got {self.port}")
        for name in (
            "connect_timeout", "greeting_timeout", "command_timeout", "mail_timeout",
            "rcpt_timeout", "data_timeout", "data_block_timeout", "data_end_timeout",
            "max_connections", "destination_concurrency", "connection_reuse_limit",
        ):  # fmt: skip
            _positive("smtp_client", name, getattr(self, name))
        _positive("smtp_client", "connection_reuse_time", self.connection_reuse_time, zero=True)


def _check_routes(routes: dict[str, str]) -> None:
    # Imported here: the grammar lives with the routing code that uses it.
    from posthorn.routing.nexthop import parse_nexthop

    for domain, target in routes.items():
        try:
            parse_nexthop(target)
        except ValueError as exc:
            raise ValueError(f"routes.{domain}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AliasesConfig:
    file: str = setting(
        "", "Aliases file (sendmail/Postfix format); '' = none. Re-read when it changes."
    )
    allow_pipes: bool = setting(
        False, "Allow '|command' targets in aliases, :include: and forward files."
    )
    allow_files: bool = setting(
        False, "Allow '/path' (mbox file) targets in aliases, :include: and forward files."
    )
    max_depth: int = setting(
        20, "Nesting limit of aliases, includes and forwards; deeper fails (554 5.4.6)."
    )
    forward_files: bool = setting(
        True, "Honour forward files: ~/.forward (system users) or {data_dir}/mail/USER/forward."
    )
    user: str = setting(
        "nobody", "Account whose privileges alias pipes and files use when running as root."
    )
    pipe_timeout: float = setting(
        300.0, "Seconds a pipe command may run; then it is killed and delivery deferred."
    )

    def __post_init__(self) -> None:
        _positive("aliases", "max_depth", self.max_depth)
        _positive("aliases", "pipe_timeout", self.pipe_timeout)


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    vrfy: str = setting(
        "trusted", "VRFY: on, off (252 to all) or trusted (trusted networks and AUTH only)."
    )
    expn: str = setting(
        "trusted", "EXPN: on, off (252 to all) or trusted (trusted networks and AUTH only)."
    )

    def __post_init__(self) -> None:
        _choice("verify", "vrfy", self.vrfy, ("on", "off", "trusted"))
        _choice("verify", "expn", self.expn, ("on", "off", "trusted"))


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
class ClusterConfig:
    node: str = setting(
        "", "This node's name among nodes sharing a queue (its lease owner); '' = the host name."
    )


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
    routes: dict[str, str] = field(
        default_factory=dict,
        metadata={"doc": 'Transport table: domain or "*" -> "smtp:[host]:port" (no MX lookup)'},
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
        _check_routes(self.routes)
