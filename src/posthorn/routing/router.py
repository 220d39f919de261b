"""Where each recipient goes: which addresses are local, whose mailbox they name, the
route to each, and the RCPT answers that follow.

Owns: local domains (the shared ones in `local.domains`, where users, system accounts and
plain aliases apply, and virtual domains with users of their own), address extensions
(`user+tag`), catch-all users, the mailbox format of each user, looking up aliases and
forward files for an address (`alias_for`, `owner_for`, `forward_for`, the directory
that `expand.py` walks), `route()` for the queue runner and the replies to RCPT, VRFY
and EXPN (the last two composed in `probe.py`). Does not own relay permission for
non-local domains (the session's policy), alias expansion (`expand.py`) or delivery.

Raises nothing.
"""

from __future__ import annotations

import os
import re

from posthorn.address import Address
from posthorn.config import AliasesConfig, LocalConfig
from posthorn.routing import probe, user_mailbox
from posthorn.routing.accounts import Account, Accounts
from posthorn.routing.aliases import (
    AddressTarget,
    Alias,
    AliasFile,
    LocalCopy,
    Target,
    alias_key,
)
from posthorn.routing.forward import Forward, ForwardFiles, parse_forward
from posthorn.routing.routes import File, Mailbox, Mbox, Pipe, Refused, Remote, Route
from posthorn.smtp.reply import Reply

__all__ = ["File", "Mailbox", "Mbox", "Pipe", "Refused", "Remote", "Route", "Router"]

# A user name becomes a directory name: keep it to a safe, portable alphabet so that no
# local part (`../../etc`, `a/b`, a quoted string) can reach outside the mail directory.
_USER = re.compile(r"[a-z0-9_][a-z0-9._+-]{0,63}\Z")
_MAX_INCLUDE = 1024 * 1024
_SYSTEM = Accounts("")


def _valid_user(name: str) -> bool:
    return _USER.match(name) is not None and ".." not in name


class Router:
    def __init__(
        self,
        local: LocalConfig,
        aliases: AliasesConfig | None = None,
        *,
        data_dir: str = "",
    ) -> None:
        self.policy = aliases or AliasesConfig()
        self.local_domains = frozenset(d.lower().rstrip(".") for d in local.domains)
        self.virtual_domains = frozenset(d.lower().rstrip(".") for d in local.virtual_domains)
        self.users = frozenset(u.lower() for u in local.users if "@" not in u)
        self.virtual_users = frozenset(u.lower() for u in local.users if "@" in u)
        self.accept_any = local.accept_any_local_user
        self.primary_domain = local.domains[0] if local.domains else "localhost"
        self.delimiter = local.extension_delimiter
        self.catch_all = {d.lower(): u.lower() for d, u in local.catch_all.items()}
        self.format = local.mailbox_format
        self.formats = {u.lower(): f for u, f in local.mailbox_formats.items()}
        self.full_names = {u.lower(): n for u, n in local.full_names.items()}
        self.accounts = Accounts(local.passwd) if local.system_users else None
        self.alias_file = AliasFile(self.policy.file)
        self.forwards = ForwardFiles(data_dir, self.policy.user, self.policy.forward_files)

    # -- the directory of addresses ----------------------------------------------------

    def is_local(self, address: Address) -> bool:
        if not address.domain:
            return True
        key = address.domain_key
        return key in self.local_domains or key in self.virtual_domains

    def is_virtual(self, address: Address) -> bool:
        return bool(address.domain) and address.domain_key in self.virtual_domains

    def _locals(self, address: Address) -> list[str]:
        """The local part, then without its extension (`user+tag` -> `user`)."""
        local = address.local.lower()
        names = [local]
        if self.delimiter and self.delimiter in local[1:]:
            names.append(local[: local.index(self.delimiter, 1)])
        return names

    def alias_for(self, address: Address) -> Alias | None:
        """The alias naming `address`: full address first, then the bare name (shared
        domains only); each with and without the extension (as Postfix looks them up)."""
        table = self.alias_file.table()
        domain = address.domain_key if address.domain else ""
        virtual = self.is_virtual(address)
        for name in self._locals(address):
            keys = [alias_key(name, domain)] if domain else []
            # RFC 5321 section 4.5.1: postmaster in a virtual domain falls back to the
            # postmaster of the host.
            if not virtual or name == "postmaster":
                keys.append(alias_key(name))
            for key in keys:
                alias = table.get(key)
                if alias is not None:
                    return alias
        return None

    def owner_for(self, address: Address) -> Address | None:
        """`owner-LIST` of a list address, when such an alias exists."""
        alias = self.alias_for(address)
        if alias is None:
            return None
        name = alias.name.partition("@")[0]
        owner = Address(f"owner-{name}", address.domain or self.primary_domain)
        return owner if self.alias_for(owner) is not None else None

    def _lists_itself(self, alias: Alias, name: str, domain: str) -> bool:
        own = {name, f"{name}@{domain}"}
        return any(
            (isinstance(t, AddressTarget) and t.address.lower() in own)
            or (isinstance(t, LocalCopy) and t.user == name)
            for t in alias.targets
        )

    def _is_user(self, name: str, address: Address, any_user: bool) -> bool:
        domain = address.domain_key if address.domain else ""
        if self.is_virtual(address):
            return f"{name}@{domain}" in self.virtual_users
        if name == "postmaster" or (any_user and self.accept_any) or name in self.users:
            return True
        return self.accounts is not None and self.accounts.get(name) is not None

    def mailbox_of(
        self, address: Address, *, any_user: bool = True, catch_all: bool = True
    ) -> str | None:
        """The mailbox an address in a local domain names: a user (`name`, or
        `name@domain` in a virtual domain), an alias that lists itself, or the domain's
        catch-all user; None when there is none. `any_user=False` ignores
        accept_any_local_user and `catch_all=False` the catch-all (VRFY needs to know)."""
        virtual = self.is_virtual(address)
        domain = address.domain_key if address.domain else ""
        for name in self._locals(address):
            if not _valid_user(name):
                continue
            # A user first: the alias lookup (and its Address) only when that fails.
            if self._is_user(name, address, any_user):
                return f"{name}@{domain}" if virtual else name
            alias = self.alias_for(Address(name, address.domain))
            if alias is not None and self._lists_itself(alias, name, domain):
                return f"{name}@{domain}" if virtual else name
        if virtual and address.local.lower() == "postmaster":
            return "postmaster"
        catch = self.catch_all.get(domain) if catch_all else None
        if catch is not None:
            return f"{catch}@{domain}" if virtual else catch
        return None

    def account_of(self, mailbox: str) -> Account | None:
        if self.accounts is None or "@" in mailbox:
            return None
        return self.accounts.get(mailbox)

    def full_name(self, mailbox: str) -> str:
        if mailbox in self.full_names:
            return self.full_names[mailbox]
        account = self.account_of(mailbox)
        return account.full_name if account is not None else ""

    def forward_for(self, mailbox: str) -> Forward | None:
        return self.forwards.find(mailbox, self.account_of(mailbox))

    def include(self, path: str) -> tuple[tuple[Target, ...], str | None]:
        """The targets of an :include: file and the account that owns it (whose
        privileges its file and pipe targets use; None for root). Raises OSError."""
        with open(path, "rb") as file:
            owner_uid = os.fstat(file.fileno()).st_uid
            text = file.read(_MAX_INCLUDE).decode("utf-8", "replace")
        targets, _ = parse_forward(text)  # include files share the forward-file grammar
        if owner_uid == 0:
            return targets, None
        account = (self.accounts or _SYSTEM).by_uid(owner_uid) or _SYSTEM.by_uid(owner_uid)
        return targets, None if account is None else account.name

    # -- routes and replies ------------------------------------------------------------

    def route(self, address: Address) -> Route | None:
        """The route of a recipient; None when a local address names no mailbox."""
        if not self.is_local(address):
            return Remote(address.domain_key)
        mailbox = self.mailbox_of(address)
        if mailbox is None:
            return None
        return self.mailbox_route(mailbox)

    def mailbox_route(self, mailbox: str) -> Mailbox | Mbox:
        """The route to a local mailbox in its user's format (local.mailbox_format,
        overridden per user by local.mailbox_formats)."""
        return user_mailbox.mailbox_route(mailbox, self.format, self.formats)

    def check_recipient(self, address: Address) -> Reply | None:
        """The refusal for a local recipient that does not exist, or None."""
        if not self.is_local(address):
            return None
        if self.mailbox_of(address) is None and self.alias_for(address) is None:
            return Reply(550, "5.1.1", (f"<{address}>: Recipient address rejected: User unknown",))
        return None

    def verify(self, argument: str, *, may_relay: bool = True) -> Reply:
        """VRFY (RFC 5321 section 3.5.1): one address, lists and forwards not followed."""
        return probe.verify(self, argument, may_relay=may_relay)

    def expand(self, argument: str) -> Reply:
        """EXPN (RFC 5321 section 3.5.2): the members of a mailing list."""
        return probe.expand(self, argument)
