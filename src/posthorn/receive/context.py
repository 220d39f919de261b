"""What every session of one listener shares: `SessionContext`.

Owns: the parts a session answers with (config, intake, router, the capabilities of the
listener), the listener's policy (trusted networks, AUTH before MAIL on submission,
error limit) and the shared services (password file, per-client limits, inbound
checker, ETRN, an injectable sleep for the tarpit and AUTH delays). Does not own any
decision (`session.py`) or building these parts from config (`daemon.py`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from posthorn.config import Config
from posthorn.intake import Intake
from posthorn.mailauth.check import InboundChecker
from posthorn.passwords import PasswordFile
from posthorn.receive.limits import ClientLimits
from posthorn.routing.router import Router
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply

__all__ = ["SessionContext"]


@dataclass(slots=True)
class SessionContext:
    """What every session of a listener shares."""

    config: Config
    intake: Intake
    router: Router
    caps: Capabilities
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    etrn: Callable[[str], Awaitable[Reply]] | None = None
    max_errors: int = 20
    passwords: PasswordFile | None = None  # AUTH is offered only with a password file
    limits: ClientLimits | None = None
    require_auth: bool = False  # a submission listener: AUTH before MAIL (RFC 6409)
    checker: InboundChecker | None = None  # SPF, DKIM, DMARC of inbound mail
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
