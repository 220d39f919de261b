"""Limits per client, shared by every session of every listener (Postfix's anvil).

Owns: the count of open sessions (overall and per client IP), the rate of MAIL commands
per client IP per minute, and the memory of failed AUTH attempts per client IP with the
throttle that follows from it. Each answer is a `Reply` to give, or None. Clients in the
trusted networks are exempt from the per-IP limits when so configured (as Postfix's
smtpd_client_event_limit_exceptions = $mynetworks), never from the overall connection
limit or the AUTH throttle. Does not own sockets or timing of sessions; the clock is
injected (monotonic seconds).
"""

from __future__ import annotations

import collections
import ipaddress
import time
from collections.abc import Callable

from posthorn.address import parse_ip
from posthorn.config import AuthConfig, LimitsConfig
from posthorn.smtp.reply import Reply

__all__ = ["ClientLimits", "Network"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MINUTE = 60.0
_PURGE_AT = 10_000  # remembered clients before a sweep forgets the idle ones
_MAX_AUTH_DELAY = 10.0


class ClientLimits:
    def __init__(
        self,
        limits: LimitsConfig,
        auth: AuthConfig,
        *,
        max_connections: int,
        trusted: tuple[Network, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.auth = auth
        self.max_connections = max_connections
        self.trusted = trusted
        self.clock = clock
        self.active = 0
        self._per_ip: collections.Counter[str] = collections.Counter()
        self._mail: dict[str, collections.deque[float]] = {}
        self._auth_failures: dict[str, collections.deque[float]] = {}

    def _exempt(self, ip: str) -> bool:
        if not self.limits.exempt_trusted:
            return False
        address = parse_ip(ip)
        return address is not None and any(address in net for net in self.trusted)

    # -- connections -----------------------------------------------------------------

    def connect(self, ip: str, hostname: str) -> Reply | None:
        """Count a new session; the 421 to close it with when a limit is reached."""
        if self.active >= self.max_connections:
            return Reply(421, "4.7.0", (f"{hostname} Error: too many connections",))
        limit = self.limits.max_connections_per_ip
        if limit and self._per_ip[ip] >= limit and not self._exempt(ip):
            return Reply(421, "4.7.0", (f"{hostname} Error: too many connections from {ip}",))
        self.active += 1
        self._per_ip[ip] += 1
        return None

    def disconnect(self, ip: str) -> None:
        self.active -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]

    # -- message rate ----------------------------------------------------------------

    def _recent(self, table: dict[str, collections.deque[float]], ip: str, window: float) -> int:
        now = self.clock()
        if len(table) > _PURGE_AT:
            for key in [k for k, q in table.items() if not q or q[-1] <= now - window]:
                del table[key]
        times = table.get(ip)
        if times is None:
            return 0
        while times and times[0] <= now - window:
            times.popleft()
        return len(times)

    def mail(self, ip: str) -> Reply | None:
        """Count a MAIL command; 450 4.7.1 when the client is over its rate."""
        limit = self.limits.messages_per_minute
        if not limit or self._exempt(ip):
            return None
        if self._recent(self._mail, ip, _MINUTE) >= limit:
            # A temporary refusal: the client may try again in a minute.
            return Reply(450, "4.7.1", (f"Error: too much mail from {ip}; try again later",))
        self._mail.setdefault(ip, collections.deque()).append(self.clock())
        return None

    # -- AUTH failures ---------------------------------------------------------------

    def auth_blocked(self, ip: str) -> bool:
        """True when the client has failed AUTH too often recently."""
        recent = self._recent(self._auth_failures, ip, self.auth.failure_window)
        return recent >= self.auth.max_failures

    def auth_failed(self, ip: str) -> float:
        """Remember a failure; the seconds to wait before answering it (grows with each)."""
        self._recent(self._auth_failures, ip, self.auth.failure_window)
        times = self._auth_failures.setdefault(ip, collections.deque())
        times.append(self.clock())
        return min(self.auth.failure_delay * len(times), _MAX_AUTH_DELAY)
