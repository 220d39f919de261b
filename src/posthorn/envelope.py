"""The envelope: who a message is from and for, and how it arrived (RFC 5321 section 2.3.1).

Owns: the `Envelope` and `Recipient` value types shared by the receiving side, the
queue and delivery. The envelope drives delivery; headers never do. Does not own the
message content or any per-recipient delivery state (see `posthorn.queue.model`).
A recipient that alias expansion turned into a file or pipe target carries its fixed
route (`posthorn.routing.routes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posthorn.address import Address
from posthorn.routing.routes import FixedRoute

__all__ = ["Envelope", "Recipient"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """One forward-path with its DSN parameters (RFC 3461 section 4)."""

    address: Address
    notify: frozenset[str] | None = None  # None: the default (FAILURE, and DELAY if offered)
    orcpt: str | None = None  # "rfc822;original@address"
    # Set by alias expansion at intake for targets that are not addresses (file, pipe,
    # refused); None: the route follows from the address at delivery time.
    route: FixedRoute | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Sender, recipients and the facts of arrival that trace headers and DSNs need."""

    sender: Address | None  # None is the null reverse-path <> (bounces)
    recipients: tuple[Recipient, ...]
    body: str | None = None  # BODY= of MAIL FROM: "7BIT" | "8BITMIME" | None
    smtputf8: bool = False
    ret: str | None = None  # RET= "FULL" | "HDRS"
    envid: str | None = None
    client_address: str = ""  # IP address, or "" for local submission
    client_name: str = ""  # reverse DNS name, "" when unknown
    helo: str = ""
    protocol: str = "ESMTP"  # the "with" of Received (RFC 3848)
    auth_user: str | None = None
    arrival: float = field(default=0.0, compare=False)  # Unix time

    @property
    def sender_text(self) -> str:
        """The reverse-path as written in logs and headers, without brackets."""
        return "" if self.sender is None else str(self.sender)
