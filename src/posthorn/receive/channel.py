"""One accepted SMTP connection: the server side of a `StreamWire`.

Owns: what the server adds to the generic wire: the listener's callback on connect, and
STARTTLS with the server's TLS context (the handshake as the server, with the
configured time limit), described for the Received header. Does not own the
conversation (`conversation.py`) or the stream mechanics (`posthorn.wire`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from posthorn.receive.tls import describe
from posthorn.wire import StreamWire

__all__ = ["Channel"]


class Channel(StreamWire):
    """Created by the listener for each accepted connection."""

    def __init__(
        self,
        on_connect: Callable[[Channel], None],
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float = 60.0,
    ) -> None:
        super().__init__(lambda wire: on_connect(self))
        self.tls = tls
        self.handshake_timeout = handshake_timeout

    async def begin_tls(self) -> str:
        """The conversation's STARTTLS: upgrade as the server; the TLS description."""
        assert self.tls is not None
        ssl_object = await self.start_tls(
            self.tls, server_side=True, handshake_timeout=self.handshake_timeout
        )
        return describe(ssl_object)

    def tls_description(self) -> str:
        """For a connection that was TLS from the start (implicit TLS)."""
        if self.transport is None:
            return ""
        return describe(self.transport.get_extra_info("ssl_object"))
