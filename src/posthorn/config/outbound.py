"""The settings of sending mail to other hosts: [smtp_client] (TLS policy, credentials,
the timeouts of RFC 5321 section 4.5.3.2, connection limits and reuse), [dns] (the
resolver) and the check of the [routes] transport table.

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own the [routes] grammar (`routing/nexthop.py`) or the SMTP client
(`delivery/`).

Raises `ValueError` from a section's constructor (or `check_routes`) for a bad value.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["DnsConfig", "SmtpClientConfig", "check_routes"]


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
        {}, "AUTH toward relay hosts: host (as in [routes]) -> 'user:password'.", secret=True
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
        choice("smtp_client", "tls", self.tls, _TLS_POLICIES)
        for key, value in self.tls_policy.items():
            choice("smtp_client", f"tls_policy.{key}", value, _TLS_POLICIES)
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
            positive("smtp_client", name, getattr(self, name))
        positive("smtp_client", "connection_reuse_time", self.connection_reuse_time, zero=True)


@dataclass(frozen=True, slots=True)
class DnsConfig:
    nameservers: tuple[str, ...] = setting(
        (), "Resolvers as HOST or HOST:PORT; empty = those in /etc/resolv.conf."
    )
    timeout: float = setting(10.0, "Seconds for one DNS lookup, all retries included.")

    def __post_init__(self) -> None:
        positive("dns", "timeout", self.timeout)
        for server in self.nameservers:
            port = server.rpartition(":")[2] if server.count(":") == 1 else ""
            if port and not port.isdigit():
                raise ValueError(f"dns.nameservers: bad port in {server!r}")


def check_routes(routes: dict[str, str]) -> None:
    """Each [routes] target must parse (raises ValueError naming `routes.DOMAIN`)."""
    # Imported here: the grammar lives with the routing code that uses it.
    from posthorn.routing.nexthop import parse_nexthop

    for domain, target in routes.items():
        try:
            parse_nexthop(target)
        except ValueError as exc:
            raise ValueError(f"routes.{domain}: {exc}") from exc
