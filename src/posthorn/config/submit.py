"""The settings of the user agent: [submit], how `posthorn send` submits mail over SMTP
(server, STARTTLS, certificate checks, AUTH).

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own the submission dialogue (`ua/submit.py`).

Raises `ValueError` from the section's constructor for a value out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["SubmitConfig"]


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
        choice("submit", "starttls", self.starttls, ("auto", "require", "never"))
        positive("submit", "timeout", self.timeout)
        host, sep, port = self.server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"submit.server must be HOST:PORT; got {self.server!r}")
        if self.auth_user and not self.auth_password_file:
            raise ValueError("submit.auth_user needs submit.auth_password_file")
