"""Alias and forward expansion: envelope recipients in, final recipients out (at intake).

Owns: the walk from each recipient through aliases, :include: files and forward files to
final recipients (mailboxes, remote addresses, file and pipe targets), with
- loop detection: an address already on the path fails with 554 5.4.6, unless an alias
  or forward file lists itself, which means "and my own mailbox too";
- a depth limit (config `aliases.max_depth`), past which the branch fails (554 5.4.6);
- `Delivered-To` loop protection: an alias or forward address that the message already
  carries in a Delivered-To header is not expanded again but fails (554 5.4.6);
- duplicate removal (the first path to a final recipient wins);
- owner-LIST: the deliveries of a list with an `owner-LIST` alias get that sender
  (never for the null sender: a bounce stays a bounce);
- the forwarding chain of each final recipient, which intake writes as Delivered-To
  headers of that copy;
- the targets config forbids (pipes, files) failing with 550 5.7.1;
- with `aliases.forward_offsite = false`, an off-site address in a forward file (or an
  :include: file it names) is not followed: that line goes to the user's own mailbox
  instead, with a warning. The admin's aliases may always send off-site.
Pure given its `Directory` (the router) but for that warning; reading forward and include
files happens behind it. Does not own the queue (intake groups finals into `Copy` values
to commit).

Raises `ExpansionError` for a temporary problem (an unreadable :include: file): the
message should be retried, not bounced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from posthorn import log
from posthorn.address import Address, AddressError
from posthorn.config import AliasesConfig
from posthorn.envelope import Recipient
from posthorn.message import headers
from posthorn.routing.aliases import (
    AddressTarget,
    Alias,
    FileTarget,
    IncludeTarget,
    LocalCopy,
    PipeTarget,
    Target,
)
from posthorn.routing.forward import Forward
from posthorn.routing.routes import File, FixedRoute, Pipe, Refused
from posthorn.smtp.reply import Reply

__all__ = [
    "Copy",
    "Directory",
    "Expander",
    "ExpansionError",
    "Final",
    "delivered_keys",
    "expand_recipients",
    "group",
]


_log = log.get("local")


class ExpansionError(Exception):
    """Expansion cannot finish now (an include file cannot be read); try again later."""


class Directory(Protocol):
    policy: AliasesConfig

    def is_local(self, address: Address) -> bool: ...
    def alias_for(self, address: Address) -> Alias | None: ...
    def owner_for(self, address: Address) -> Address | None: ...
    def mailbox_of(self, address: Address) -> str | None: ...
    def forward_for(self, mailbox: str) -> Forward | None: ...
    def include(self, path: str) -> tuple[tuple[Target, ...], str | None]: ...


@dataclass(frozen=True, slots=True)
class Final:
    """One final recipient, with the sender its copy goes out with and the chain of
    forwarding addresses that led to it (outermost first)."""

    recipient: Recipient
    sender: Address | None
    chain: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class Copy:
    """Final recipients that share a sender and a forwarding chain: one queue entry."""

    sender: Address | None
    chain: tuple[Address, ...]
    recipients: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class _Path:
    """Where the walk is: how deep, through which addresses, for whom, as whom."""

    origin: Recipient
    sender: Address | None
    depth: int = 0
    ancestors: tuple[str, ...] = ()
    chain: tuple[Address, ...] = ()
    user: str = ""  # whose privileges file and pipe targets use
    forward: str = ""  # the forward file whose targets these are ("" = not a forward file)


def _key(address: Address) -> str:
    return f"{address.local.lower()}@{address.domain_key}" if address.domain else address.local


def _loop(address: Address, why: str) -> Refused:
    return Refused(Reply(554, "5.4.6", (f"<{address}>: {why}",)))


class _Walk:
    def __init__(self, directory: Directory, delivered: frozenset[str]) -> None:
        self.dir = directory
        self.policy = directory.policy
        self.delivered = delivered
        self.finals: dict[str, Final] = {}

    def emit(self, address: Address, path: _Path, route: FixedRoute | None = None) -> None:
        if isinstance(route, File):
            key = f"file:{route.path}"
        elif isinstance(route, Pipe):
            key = f"pipe:{route.user}:{route.command}"
        else:
            key = ("refused:" if route else "") + _key(address)
        if key in self.finals:
            return
        origin = path.origin
        orcpt = origin.orcpt
        if orcpt is None and (route is not None or address != origin.address):
            # RFC 3461 section 4.2: keep the address the sender gave, for DSNs.
            orcpt = f"rfc822;{origin.address}"
        recipient = Recipient(address, origin.notify, orcpt, route)
        self.finals[key] = Final(recipient, path.sender, path.chain)

    def address(self, address: Address, path: _Path) -> None:
        if not self.dir.is_local(address):
            self.emit(address, path)
            return
        alias = self.dir.alias_for(address)
        mailbox = None if alias is not None else self.dir.mailbox_of(address)
        forward = self.dir.forward_for(mailbox) if mailbox is not None else None
        if alias is not None:
            targets = alias.targets
        elif forward is not None:
            targets = forward.targets
        else:
            self.emit(address, path)  # a mailbox, or unknown (refused at delivery)
            return
        key = _key(address)
        if key in self.delivered:
            # The message was forwarded through this address before: a mail loop.
            self.emit(address, path, _loop(address, "mail forwarding loop (Delivered-To)"))
            return
        if key in path.ancestors:
            self.emit(address, path, _loop(address, "alias or forward loop"))
            return
        if path.depth >= self.policy.max_depth:
            self.emit(address, path, _loop(address, "alias nesting too deep"))
            return
        sender = path.sender
        if alias is not None and sender is not None:
            sender = self.dir.owner_for(address) or sender
        inner = dataclasses.replace(
            path,
            sender=sender,
            depth=path.depth + 1,
            ancestors=(*path.ancestors, key),
            chain=(*path.chain, address),
            user=forward.owner if forward is not None else self.policy.user,
            forward=forward.path if forward is not None else "",
        )
        if self.targets(address, targets, inner, path) == 0:
            self.emit(address, path, Refused(Reply(550, "5.1.1", (f"<{address}>: empty list",))))

    def targets(
        self, owner: Address, targets: Sequence[Target], inner: _Path, outer: _Path
    ) -> int:
        """Walk the targets of alias or forward `owner`; returns how many there were."""
        count = 0
        for target in targets:
            count += 1
            if isinstance(target, AddressTarget):
                self.target_address(owner, target.address, inner, outer)
            elif isinstance(target, LocalCopy):
                copy = Address(target.user, owner.domain)
                # `\user`: that user's mailbox as it is; aliases and forwards not applied.
                self.emit(copy, outer if _key(copy) == _key(owner) else inner)
            elif isinstance(target, FileTarget | PipeTarget):
                # The alias's own delivery (as its mailbox would be): its Delivered-To is
                # added by the delivery agent, not as a forwarding step.
                self.emit(
                    owner, dataclasses.replace(inner, chain=outer.chain), self.fixed(target, inner)
                )
            else:
                count += self.include(owner, target, inner, outer) - 1
        return count

    def fixed(self, target: FileTarget | PipeTarget, inner: _Path) -> FixedRoute:
        if isinstance(target, FileTarget):
            return File(target.path, inner.user) if self.policy.allow_files else _off("file")
        return Pipe(target.command, inner.user) if self.policy.allow_pipes else _off("pipe")

    def target_address(self, owner: Address, text: str, inner: _Path, outer: _Path) -> None:
        try:
            if "@" in text:
                address = Address.parse(text, utf8=True)
            else:
                address = Address(text, owner.domain)
        except AddressError:
            self.emit(owner, inner, Refused(Reply(550, "5.1.3", (f"bad target {text!r}",))))
            return
        if _key(address) == _key(owner):
            # An alias or forward file that lists itself: deliver to the mailbox too.
            self.emit(owner, outer)
        elif inner.forward and not self.policy.forward_offsite and not self.dir.is_local(address):
            # A forward file is the user's, not the site's configuration: where the site
            # says so it opens no path off-site to any sender (RFC 2505 section 2.4: the
            # site decides what it relays). The mail stays in the mailbox, not lost.
            _log.warning(
                "%s: off-site target <%s> not followed (aliases.forward_offsite = false);"
                " kept in the mailbox of <%s>",
                inner.forward,
                address,
                owner,
            )
            self.emit(owner, outer)
        else:
            self.address(address, inner)

    def include(self, owner: Address, target: IncludeTarget, inner: _Path, outer: _Path) -> int:
        key = f":include:{target.path}"
        if key in inner.ancestors or inner.depth >= self.policy.max_depth:
            self.emit(owner, inner, _loop(owner, f"include loop at {target.path}"))
            return 1
        try:
            targets, file_owner = self.dir.include(target.path)
        except OSError as exc:
            raise ExpansionError(f"cannot read {target.path}: {exc.strerror}") from exc
        deeper = dataclasses.replace(
            inner,
            depth=inner.depth + 1,
            ancestors=(*inner.ancestors, key),
            user=file_owner or inner.user,
        )
        return self.targets(owner, targets, deeper, outer)


def _off(kind: str) -> Refused:
    return Refused(Reply(550, "5.7.1", (f"{kind} delivery is disabled in this mail system",)))


def expand_recipients(
    directory: Directory,
    recipients: Sequence[Recipient],
    sender: Address | None,
    delivered: frozenset[str],
) -> list[Final]:
    """The final recipients of a message. `delivered` holds the keys (`local@domain`,
    lower case) of the Delivered-To headers the message already carries."""
    walk = _Walk(directory, delivered)
    for recipient in recipients:
        path = _Path(recipient, sender, user=directory.policy.user)
        if recipient.route is not None:
            walk.emit(recipient.address, path, recipient.route)
        else:
            walk.address(recipient.address, path)
    return list(walk.finals.values())


def group(finals: Sequence[Final]) -> list[Copy]:
    """One copy per (sender, forwarding chain), in the order the finals came."""
    groups: dict[tuple[Address | None, tuple[Address, ...]], list[Recipient]] = {}
    for final in finals:
        groups.setdefault((final.sender, final.chain), []).append(final.recipient)
    return [Copy(s, chain, tuple(rcpts)) for (s, chain), rcpts in groups.items()]


def delivered_keys(values: Sequence[str]) -> frozenset[str]:
    """Keys of the addresses in Delivered-To headers; unparsable values are skipped."""
    keys = set()
    for value in values:
        try:
            keys.add(_key(Address.parse(value, utf8=True)))
        except AddressError:
            continue
    return frozenset(keys)


class Expander:
    """The expansion step of intake: an envelope and its header block in, copies out."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def __call__(
        self, sender: Address | None, recipients: Sequence[Recipient], header_block: bytes
    ) -> list[Copy]:
        delivered = delivered_keys(headers.delivered_to_values(header_block))
        return group(expand_recipients(self.directory, recipients, sender, delivered))
