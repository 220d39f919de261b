"""One session's AUTH conversation (RFC 4954): from `AUTH mech` to 235 or 535.

Owns: refusing an unoffered mechanism (504 5.5.4) and a throttled client (421 4.7.0),
driving the SASL exchange of `auth.py` through its 334 challenges, checking the
credentials against the password file in a worker thread (scrypt is slow on purpose),
refusing proxy authorisation (an authzid that is not the user), recording failures with
`ClientLimits` and waiting the delay it asks for before 535 5.7.8. Does not own when
AUTH may happen (the session's capabilities and the core's AUTH state) or the identity
afterwards (the session keeps `auth_user`).

Never raises for client input; a broken password file is a 454 4.7.0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from posthorn import log
from posthorn.passwords import PasswordFile, PasswordFileError
from posthorn.receive.auth import Abort, Challenge, Credentials, SaslExchange, Step
from posthorn.receive.limits import ClientLimits
from posthorn.smtp.reply import Reply

__all__ = ["Login", "LoginResult"]

_log = log.get("smtpd")


@dataclass(frozen=True, slots=True)
class LoginResult:
    reply: Reply
    user: str | None = None  # set when the reply is 235


class Login:
    def __init__(
        self,
        passwords: PasswordFile,
        limits: ClientLimits | None,
        client_address: str,
        peer: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.passwords = passwords
        self.limits = limits
        self.client_address = client_address
        self.peer = peer
        self.sleep = sleep
        self._sasl: SaslExchange | None = None

    async def start(
        self, mechanism: str, initial: str | None, offered: tuple[str, ...]
    ) -> LoginResult:
        if mechanism not in offered:
            # RFC 4954 section 4: a mechanism the server does not support gets 504.
            return LoginResult(
                Reply(504, "5.5.4", ("Error: unsupported authentication mechanism",))
            )
        if self.limits is not None and self.limits.auth_blocked(self.client_address):
            _log.warning("AUTH throttled for %s", self.peer)
            return LoginResult(Reply(421, "4.7.0", ("Error: too many AUTH failures; try later",)))
        self._sasl = SaslExchange(mechanism)
        return await self._step(self._sasl.start(initial))

    async def respond(self, line: str) -> LoginResult:
        if self._sasl is None:
            return LoginResult(Reply(503, "5.5.1", ("Error: no AUTH in progress",)))
        return await self._step(self._sasl.respond(line))

    def reset(self) -> None:
        self._sasl = None

    async def _step(self, step: Step) -> LoginResult:
        if isinstance(step, Challenge):
            return LoginResult(Reply(334, None, (step.text,)))
        mechanism = self._sasl.mechanism if self._sasl else ""
        self._sasl = None
        if isinstance(step, Abort):
            return LoginResult(step.reply)
        return await self._check(step, mechanism)

    async def _check(self, creds: Credentials, mechanism: str) -> LoginResult:
        ok = False
        # No proxy authorisation: an authzid other than the user itself fails.
        if creds.authzid in ("", creds.user):
            try:
                ok = await asyncio.to_thread(self.passwords.check, creds.user, creds.password)
            except (OSError, PasswordFileError) as exc:
                _log.error("password file: %s", exc)
                # RFC 4954 section 6: 454 4.7.0 for a temporary server failure.
                return LoginResult(Reply(454, "4.7.0", ("Temporary authentication failure",)))
        if ok:
            _log.info("%s: sasl_method=%s, sasl_username=%s", self.peer, mechanism, creds.user)
            return LoginResult(Reply(235, "2.7.0", ("Authentication successful",)), creds.user)
        delay = self.limits.auth_failed(self.client_address) if self.limits is not None else 0.0
        _log.warning("%s: SASL %s authentication failed", self.peer, mechanism)
        if delay:
            await self.sleep(delay)  # slows a password-guessing client down
        # RFC 4954 section 6: 535 5.7.8, the credentials are invalid.
        return LoginResult(Reply(535, "5.7.8", ("Error: authentication failed",)))
