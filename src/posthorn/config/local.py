"""The settings of local mail: [local] (local and virtual domains, users, mailboxes and
their formats, a mailbox server over LMTP), [aliases] (aliases, :include: and forward
files, pipe and file targets) and [verify] (VRFY and EXPN).

Owns: each of those settings' name, type, default, one-line documentation and range
check. Does not own routing (`routing/router.py`) or delivery (`delivery/`).

Raises `ValueError` from a section's constructor for a value out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

from posthorn.config.fields import choice, positive, setting

__all__ = ["AliasesConfig", "LocalConfig", "VerifyConfig"]


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
        choice("local", "mailbox_format", self.mailbox_format, formats)
        for user, fmt in self.mailbox_formats.items():
            choice("local", f"mailbox_formats.{user}", fmt, formats)
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
    forward_offsite: bool = setting(
        True, "Forward files may send mail off-site; false = such a line is kept in the mailbox."
    )
    user: str = setting(
        "nobody", "Account whose privileges alias pipes and files use when running as root."
    )
    pipe_timeout: float = setting(
        300.0, "Seconds a pipe command may run; then it is killed and delivery deferred."
    )

    def __post_init__(self) -> None:
        positive("aliases", "max_depth", self.max_depth)
        positive("aliases", "pipe_timeout", self.pipe_timeout)


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    vrfy: str = setting(
        "trusted", "VRFY: on, off (252 to all) or trusted (trusted networks and AUTH only)."
    )
    expn: str = setting(
        "trusted", "EXPN: on, off (252 to all) or trusted (trusted networks and AUTH only)."
    )

    def __post_init__(self) -> None:
        choice("verify", "vrfy", self.vrfy, ("on", "off", "trusted"))
        choice("verify", "expn", self.expn, ("on", "off", "trusted"))
