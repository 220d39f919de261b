"""VRFY and EXPN answers (RFC 5321 sections 3.5.1 to 3.5.3), from what the router knows.

Owns: reading the command argument (an address, a user name or a full name), the reply
to VRFY for one address without expanding lists or following forward files (250 with the
full name, 251 when an alias forwards elsewhere, 551 for a non-local address this
client may not relay to, 252 when the answer cannot be known, 550 5.1.1 unknown, 553
5.1.4 ambiguous), and the EXPN reply: a mailing list (or a user's forward file, as
sendmail shows it) expanded to one mailbox per line. Does not own whether a client may
ask at all (the session's policy: `[verify]` in config).

Never raises: bad arguments get 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posthorn.address import Address, AddressError
from posthorn.envelope import Recipient
from posthorn.routing import expand as expansion
from posthorn.routing.aliases import AddressTarget
from posthorn.routing.routes import File, Pipe, Refused
from posthorn.smtp.reply import Reply

if TYPE_CHECKING:
    from posthorn.routing.router import Router

__all__ = ["expand", "verify"]

_CANNOT_VRFY = Reply(252, "2.0.0", ("Cannot VRFY user, but will attempt delivery",))
_CANNOT_EXPN = Reply(252, "2.0.0", ("Cannot EXPN, but will attempt delivery",))


def _parse(argument: str) -> Address | str | Reply:
    """An address, a bare name or full name to search for (str), or a 501."""
    text = argument.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        return Reply(501, "5.5.4", ("Syntax: VRFY <address>",))
    if "@" in text:
        try:
            return Address.parse(text, utf8=True)
        except AddressError:
            return Reply(501, "5.1.3", ("Bad address syntax",))
    return text


def _mailbox_line(router: Router, address: Address, mailbox: str) -> str:
    name = router.full_name(mailbox)
    return f"{name} <{address}>" if name else f"<{address}>"


def _named(router: Router, text: str) -> list[str]:
    """Mailboxes a bare name or a full name may mean: users of virtual domains with that
    local part, and users whose full name contains every word given."""
    words = text.lower().split()
    found: list[str] = []
    if len(words) == 1:
        found += sorted(u for u in router.virtual_users if u.partition("@")[0] == words[0])
    names = dict(router.full_names)
    if router.accounts is not None:
        names.update({a.name: a.full_name for a in router.accounts.all() if a.full_name})
    for mailbox, full in sorted(names.items()):
        if all(w in full.lower().split() for w in words) and mailbox not in found:
            found.append(mailbox)
    return found


def _address_of(router: Router, mailbox: str) -> Address:
    local, _, domain = mailbox.partition("@")
    return Address(local, domain or router.primary_domain)


def verify(router: Router, argument: str, *, may_relay: bool = True) -> Reply:
    parsed = _parse(argument)
    if isinstance(parsed, Reply):
        return parsed
    if isinstance(parsed, Address):
        return _verify_address(router, parsed, parsed, may_relay)
    name = Address(parsed, router.primary_domain) if " " not in parsed else None
    if name is not None and (
        router.alias_for(name) is not None or router.mailbox_of(name, any_user=False)
    ):
        return _verify_address(router, name, name, may_relay)
    found = _named(router, parsed)
    if len(found) == 1:
        address = _address_of(router, found[0])
        return _verify_address(router, address, address, may_relay)
    if len(found) > 1:
        lines = [_mailbox_line(router, _address_of(router, m), m) for m in found]
        # RFC 5321 section 3.5.1: an ambiguous name may list the possibilities.
        return Reply(553, "5.1.4", ("Ambiguous; possibilities are", *lines))
    if name is not None and router.accept_any:
        return _CANNOT_VRFY
    return Reply(550, "5.1.1", (f"{parsed}... User unknown",))


def _verify_address(router: Router, address: Address, shown: Address, may_relay: bool) -> Reply:
    if not router.is_local(address):
        if may_relay:
            return _CANNOT_VRFY
        # RFC 5321 section 3.4 via 3.5.3: recognised, but not forwarded for this client.
        return Reply(551, "5.7.1", (f"User not local; please try <{address}>",))
    alias = router.alias_for(address)
    mailbox = router.mailbox_of(address, any_user=False, catch_all=False)
    if alias is not None and mailbox is None:
        targets = alias.targets
        if len(targets) == 1 and isinstance(targets[0], AddressTarget):
            target = targets[0].address
            if "@" in target and not router.is_local(Address.parse(target, utf8=True)):
                return Reply(251, "2.1.5", (f"User not local; will forward to <{target}>",))
        # A list or a local alias: deliverable; VRFY does not expand it.
        return Reply(250, "2.1.5", (f"<{address}>",))
    if mailbox is not None:
        return Reply(250, "2.1.5", (_mailbox_line(router, address, mailbox),))
    if router.mailbox_of(address) is not None:
        return _CANNOT_VRFY  # any local part (or a catch-all) is accepted
    return Reply(550, "5.1.1", (f"{shown}... User unknown",))


def expand(router: Router, argument: str) -> Reply:
    parsed = _parse(argument)
    if isinstance(parsed, Reply):
        return parsed
    address = parsed if isinstance(parsed, Address) else Address(parsed, router.primary_domain)
    if not router.is_local(address):
        return _CANNOT_EXPN
    alias = router.alias_for(address)
    mailbox = None if alias is not None else router.mailbox_of(address, any_user=False)
    if alias is None and mailbox is None:
        return Reply(550, "5.1.1", (f"{parsed}... User unknown",))
    if alias is None and (mailbox is None or router.forward_for(mailbox) is None):
        return Reply(550, "5.1.0", (f"{parsed}... That is a user name, not a mailing list",))
    try:
        finals = expansion.expand_recipients(router, [Recipient(address)], None, frozenset())
    except expansion.ExpansionError as exc:
        return Reply(451, "4.3.0", (str(exc),))
    lines = [
        _member_line(router, f.recipient)
        for f in finals
        if not isinstance(f.recipient.route, Refused)
    ]
    if not lines:
        return Reply(550, "5.4.6", (f"{parsed}... expands to no deliverable address",))
    # RFC 5321 section 3.5.2: one mailbox on each line of the reply.
    return Reply(250, "2.1.5", tuple(lines))


def _member_line(router: Router, recipient: Recipient) -> str:
    route, address = recipient.route, recipient.address
    if isinstance(route, File):
        return f"<{Address(route.path, address.domain)}>"
    if isinstance(route, Pipe):
        return f"<{Address('|' + route.command, address.domain)}>"
    mailbox = router.mailbox_of(address, any_user=False) if router.is_local(address) else None
    return _mailbox_line(router, address, mailbox) if mailbox else f"<{address}>"
