"""The settings of the server process and its SMTP service: [server] (names, listeners,
data directory, workers, privileges), [smtp] (the protocol's limits and timeouts),
[submission] (RFC 6409 and RFC 8314 listeners), [limits] (per-client and per-message
limits against abuse) and [log].

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own what the server does with them (`daemon.py`, `receive/`).

Raises `ValueError` from a section's constructor for a value out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["LimitsConfig", "LogConfig", "ServerConfig", "SmtpConfig", "SubmissionConfig"]


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
        positive("server", "max_connections", self.max_connections)
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
    always_add_missing_headers: bool = setting(
        False,
        "Add Message-ID and Date when missing to mail from any client, not only to mail"
        " that starts here (RFC 5321 6.4 keeps relays from doing it; Postfix's default too).",
    )

    def __post_init__(self) -> None:
        choice("smtp", "bare_line_endings", self.bare_line_endings, ("reject", "normalise"))
        positive("smtp", "max_message_size", self.max_message_size, zero=True)
        positive("smtp", "max_recipients", self.max_recipients)
        positive("smtp", "idle_timeout", self.idle_timeout)
        positive("smtp", "data_timeout", self.data_timeout)
        positive("smtp", "max_text_line", self.max_text_line, zero=True)
        if self.max_command_line < 512:
            raise ValueError("smtp.max_command_line must be >= 512 (RFC 5321 4.5.3.1.4)")


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
            positive("limits", name, getattr(self, name), zero=True)
        for name in ("max_errors", "session_timeout", "max_headers", "max_header_size"):
            positive("limits", name, getattr(self, name))
        positive("limits", "tarpit_delay", self.tarpit_delay, zero=True)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = setting("info", "debug (SMTP transcripts), info, warning or error.")

    def __post_init__(self) -> None:
        choice("log", "level", self.level, ("debug", "info", "warning", "error"))
