"""The settings of the SMTP service's security: [tls] (the server certificate), [auth]
(SMTP AUTH users and throttling), [relay] (who may relay), [mailauth] (SPF, DKIM and
DMARC checks of inbound mail) and [dkim] (signing outbound mail).

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own loading certificates or keys (`receive/tls.py`,
`mailauth/signing.py`) or checking the files exist (`check_secrets.py`).

Raises `ValueError` from a section's constructor for a value out of range.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["AuthConfig", "DkimConfig", "MailAuthConfig", "RelayConfig", "TlsConfig"]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str = setting("", "PEM certificate (chain) for STARTTLS and implicit TLS; '' = no TLS.")
    key: str = setting("", "PEM private key of `cert`.")
    min_version: str = setting("TLSv1.2", "Oldest TLS version accepted: 'TLSv1.2' or 'TLSv1.3'.")
    handshake_timeout: float = setting(30.0, "Seconds a client has to complete a TLS handshake.")

    def __post_init__(self) -> None:
        choice("tls", "min_version", self.min_version, ("TLSv1.2", "TLSv1.3"))
        positive("tls", "handshake_timeout", self.handshake_timeout)
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
            choice("auth", "mechanisms", mech, ("PLAIN", "LOGIN"))
        positive("auth", "max_failures", self.max_failures)
        positive("auth", "failure_window", self.failure_window)
        positive("auth", "failure_delay", self.failure_delay, zero=True)


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
            choice("mailauth", name, getattr(self, name), _ACTIONS)


@dataclass(frozen=True, slots=True)
class DkimConfig:
    keys: dict[str, str] = setting(
        {}, "Outbound signing: domain = PEM private key file (`posthorn dkim keygen`)."
    )
    selector: str = setting("posthorn", "Selector (s=) used for every domain in `keys`.")
    selectors: dict[str, str] = setting({}, "Per-domain selectors overriding `selector`.")
    headers: tuple[str, ...] = setting(
        (
            "From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
            "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "In-Reply-To",
            "References",
        ),
        "Header fields to sign (From is always signed).",
    )  # fmt: skip
