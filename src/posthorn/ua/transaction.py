"""One mail transaction on an open submission session, and what comes of it.

Owns: MAIL (with SIZE, RFC 1870 section 6; SMTPUTF8, RFC 6531 section 3.4; BODY=8BITMIME,
RFC 6152 section 3), RCPT and DATA, sent as one group when the server offers PIPELINING
(RFC 2920), the checks of what the content needs from the server, and the results as
values (`Sent`, `NotSent`, `Refusal`) with `Abort`, which ends a dialogue early with its
result. Does not own connecting, EHLO, STARTTLS or AUTH (`submit.py`) or framing
(`posthorn.smtp.client`).

Raises `Abort` carrying a `NotSent` for a refusal, `WireError` from the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posthorn.address import Address
from posthorn.smtp.extensions import Capabilities
from posthorn.smtp.reply import Reply
from posthorn.ua.wire import Wire

__all__ = ["Abort", "NotSent", "Refusal", "Result", "Sent", "expect", "transaction"]


@dataclass(frozen=True, slots=True)
class Refusal:
    recipient: Address
    reply: Reply


@dataclass(frozen=True, slots=True)
class Sent:
    """The server took responsibility for the message (for all but `refused`)."""

    reply: Reply
    refused: tuple[Refusal, ...] = ()


@dataclass(frozen=True, slots=True)
class NotSent:
    """Nothing was sent. `temporary`: trying again later may work (4xx, network)."""

    reason: str
    temporary: bool
    reply: Reply | None = None
    refused: tuple[Refusal, ...] = ()


Result = Sent | NotSent


class Abort(Exception):
    """Ends the dialogue early; carries the result to return."""

    def __init__(self, result: NotSent) -> None:
        super().__init__(result.reason)
        self.result = result


def expect(reply: Reply, what: str) -> Reply:
    """`reply` when it is positive; else the dialogue ends with `what` refused."""
    if not reply.is_positive:
        raise Abort(NotSent(f"{what} refused: {reply}", reply.is_transient, reply))
    return reply


def _mail_command(sender: Address | None, caps: Capabilities, size: int, utf8: bool) -> str:
    params = []
    if caps.size is not None:
        params.append(f"SIZE={size}")  # RFC 1870 section 6
    if utf8:
        params.append("SMTPUTF8")  # RFC 6531 section 3.4
    path = "" if sender is None else str(sender)
    return " ".join([f"MAIL FROM:<{path}>", *params])


def _check_content(caps: Capabilities, content: bytes, smtputf8: bool) -> list[str]:
    """Extra MAIL parameters the content needs, or an _Abort when the server lacks them."""
    params = []
    if smtputf8 and not caps.smtputf8:
        reason = "the server does not offer SMTPUTF8, which these addresses need"
        raise Abort(NotSent(reason, False, Reply(553, "5.6.7", (reason,))))
    if not content.isascii():
        if not caps.eightbitmime:
            reason = "the server does not accept 8-bit content (no 8BITMIME)"
            raise Abort(NotSent(reason, False, Reply(554, "5.6.3", (reason,))))
        params.append("BODY=8BITMIME")  # RFC 6152 section 3
    return params


def _envelope(
    wire: Wire, caps: Capabilities, mail: str, rcpts: list[str]
) -> tuple[Reply, list[Reply], Reply | None]:
    """MAIL and RCPT (and DATA, when pipelining); the replies in order."""
    if caps.pipelining:
        # RFC 2920 section 3.1: DATA may end the group; its reply comes last.
        wire.commands([mail, *rcpts, "DATA"])
        mail_reply = wire.reply()
        return mail_reply, [wire.reply() for _ in rcpts], wire.reply()
    wire.command(mail)
    mail_reply = wire.reply()
    replies = []
    if mail_reply.is_positive:
        for line in rcpts:
            wire.command(line)
            replies.append(wire.reply())
    return mail_reply, replies, None


def _abort_data(wire: Wire, data_reply: Reply | None, result: NotSent) -> NotSent:
    if data_reply is not None and data_reply.code == 354:
        # RFC 2920 section 3.1: the pipelined DATA was accepted although the transaction
        # failed; end it with an empty message, which the server will refuse.
        wire.message(b"")
        wire.reply()
    return result


def transaction(
    wire: Wire,
    caps: Capabilities,
    sender: Address | None,
    recipients: Sequence[Address],
    content: bytes,
    smtputf8: bool,
) -> Sent:
    extra = _check_content(caps, content, smtputf8)
    mail = " ".join([_mail_command(sender, caps, len(content), smtputf8), *extra])
    rcpts = [f"RCPT TO:<{r}>" for r in recipients]
    mail_reply, rcpt_replies, data_reply = _envelope(wire, caps, mail, rcpts)
    if not mail_reply.is_positive:
        reason = f"MAIL FROM refused: {mail_reply}"
        result = NotSent(reason, mail_reply.is_transient, mail_reply)
        raise Abort(_abort_data(wire, data_reply, result))
    refused = tuple(
        Refusal(r, reply)
        for r, reply in zip(recipients, rcpt_replies, strict=True)
        if reply.code >= 400
    )
    if len(refused) == len(recipients):
        temporary = all(r.reply.is_transient for r in refused)
        result = NotSent("all recipients were refused", temporary, None, refused)
        raise Abort(_abort_data(wire, data_reply, result))
    if data_reply is None:
        wire.command("DATA")
        data_reply = wire.reply()
    if data_reply.code != 354:
        raise Abort(NotSent(f"DATA refused: {data_reply}", data_reply.is_transient, data_reply))
    wire.message(content)
    final = wire.reply()
    if not final.is_positive:
        raise Abort(NotSent(f"message refused: {final}", final.is_transient, final, refused))
    return Sent(final, refused)
