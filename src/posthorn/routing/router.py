"""Where each recipient goes: the routing decision and the RCPT/VRFY answers it implies.

Owns: the closed union of routes (`Mailbox`, `Remote`), deciding which domains are local,
which local parts are users, and the replies to RCPT TO and VRFY that follow from that.
Pure: takes config values, not files. Does not own delivery, relay permission for
non-local domains (the session's policy) or alias expansion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from posthorn.address import Address
from posthorn.config import LocalConfig
from posthorn.smtp.reply import Reply

__all__ = ["Mailbox", "Remote", "Route", "Router"]


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Deliver into the local mailbox of `user`."""

    user: str


@dataclass(frozen=True, slots=True)
class Remote:
    """Relay to the mail exchangers of `domain` (or the route configured for it)."""

    domain: str


Route = Mailbox | Remote

# A user name becomes a directory name: keep it to a safe, portable alphabet so that no
# local part (`../../etc`, `a/b`, a quoted string) can reach outside the mail directory.
_USER = re.compile(r"[a-z0-9_][a-z0-9._+-]{0,63}\Z")


class Router:
    def __init__(self, local: LocalConfig) -> None:
        self.local_domains = frozenset(d.lower().rstrip(".") for d in local.domains)
        self.users = frozenset(u.lower() for u in local.users)
        self.accept_any = local.accept_any_local_user
        self.primary_domain = local.domains[0] if local.domains else "localhost"

    def is_local(self, address: Address) -> bool:
        return not address.domain or address.domain_key in self.local_domains

    def user_of(self, address: Address) -> str | None:
        """The local user an address in a local domain names, or None if there is none."""
        user = address.local.lower()
        if not _USER.match(user) or ".." in user:
            return None
        # RFC 5321 section 4.5.1: every local domain must accept "postmaster".
        if user == "postmaster" or self.accept_any or user in self.users:
            return user
        return None

    def route(self, address: Address) -> Route | None:
        """The route of a recipient; None when a local address names no user."""
        if not self.is_local(address):
            return Remote(address.domain_key)
        user = self.user_of(address)
        return None if user is None else Mailbox(user)

    def check_recipient(self, address: Address) -> Reply | None:
        """The refusal for a local recipient that does not exist, or None."""
        if self.is_local(address) and self.user_of(address) is None:
            return Reply(550, "5.1.1", (f"<{address}>: Recipient address rejected: User unknown",))
        return None

    def verify(self, argument: str) -> Reply:
        """VRFY (RFC 5321 section 3.5.1) for a local user name or address."""
        text = argument.strip().strip("<>")
        try:
            address = Address.parse(text, utf8=True) if "@" in text else Address(text, "")
        except ValueError:
            return Reply(501, "5.1.3", ("Bad address syntax",))
        if not self.is_local(address):
            return Reply(252, "2.0.0", ("Cannot VRFY user, but will attempt delivery",))
        user = self.user_of(address)
        if user is None:
            return Reply(550, "5.1.1", (f"{text}... User unknown",))
        if self.accept_any and user not in self.users:
            # Any local part is accepted, so VRFY cannot say more than "will try".
            return Reply(252, "2.0.0", ("Cannot VRFY user, but will attempt delivery",))
        return Reply(250, "2.0.0", (f"<{user}@{address.domain or self.primary_domain}>",))

    def expand(self, argument: str) -> Reply:
        """EXPN (RFC 5321 section 3.5.2): mailing lists come from aliases; none here."""
        reply = self.verify(argument)
        if reply.code == 250:
            return Reply(550, "5.1.1", (f"{argument.strip()}... Not a mailing list",))
        if reply.code == 252:
            return Reply(252, "2.0.0", ("Cannot EXPN, but will attempt delivery",))
        return reply
