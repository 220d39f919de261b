"""One mail transaction over an open SMTP connection: [RSET,] MAIL, RCPT..., DATA, content.

Owns: sending the transaction (pipelined as one group when the peer offers PIPELINING,
RFC 2920 section 3.1, else in lock-step), beginning it with RSET on a connection that
carried a transaction before (in the same pipelined group, so reuse costs no round trip),
ESMTP parameters only where the peer offers
their extension, and collecting the reply that decides each recipient: its RCPT reply,
or for the accepted ones the reply to DATA or to the final dot. Does not own connecting,
which host to try, or outcomes.

Raises `Broken` (from the connection) when the connection fails before the final reply:
then nothing counts as delivered. Raises `ResetFailed` when the RSET is not answered with
250: the connection is closed before any content is sent, and the caller connects anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from posthorn.address import Address
from posthorn.delivery.smtp_client import Broken, ResetFailed, SmtpConnection, Timeouts
from posthorn.smtp.client import MailOptions, mail_command, rcpt_command
from posthorn.smtp.reply import Reply

__all__ = ["RcptLine", "TxResult", "transaction"]

_BLOCK = 65536  # data is written and drained in blocks, each under data_block timeout


@dataclass(frozen=True, slots=True)
class RcptLine:
    index: int
    address: Address
    notify: frozenset[str] | None = None
    orcpt: str | None = None


@dataclass(slots=True)
class TxResult:
    """Replies of one transaction: per recipient (RCPT, or the DATA/end reply for those
    accepted), or `mail_reply` when MAIL was refused (then no recipient has one)."""

    mail_reply: Reply | None = None
    replies: dict[int, Reply] = field(default_factory=dict)


async def transaction(
    conn: SmtpConnection,
    sender: Address | None,
    options: MailOptions,
    rcpts: Sequence[RcptLine],
    content: bytes,
    timeouts: Timeouts,
    *,
    lmtp: bool = False,
) -> TxResult:
    """MAIL, RCPT..., DATA, content. Raises Broken when the connection fails
    before the final reply: then nothing counts as delivered. With `lmtp`, each accepted
    recipient gets its own reply after the final dot (RFC 2033 section 4.2)."""
    # Like Postfix on a cached connection: whatever the last transaction left behind
    # (a refused MAIL, no recipient accepted), RSET clears it (RFC 5321 section 4.1.1.5),
    # and a peer that went away says so before any content is sent.
    rset = ("RSET",) if conn.used else ()
    conn.used = True
    conn.transactions += 1
    dsn = conn.caps.dsn
    mail = mail_command(sender, options)
    rcpt_lines = [
        rcpt_command(r.address, r.notify if dsn else None, r.orcpt if dsn else None) for r in rcpts
    ]
    if conn.caps.pipelining:
        # RFC 2920 section 3.1: RSET, MAIL, the RCPTs and DATA go out as one group.
        out = b"".join(conn.core.send(c) for c in (*rset, mail, *rcpt_lines, "DATA"))
        await conn.write(out, timeouts.mail)
        if rset:
            await _rset_reply(conn, timeouts.command)
        mail_reply = await conn.read_reply(timeouts.mail)
        replies = [await conn.read_reply(timeouts.rcpt) for _ in rcpts]
        data_reply = await conn.read_reply(timeouts.data)
    else:
        if rset:
            await conn.write(conn.core.send("RSET"), timeouts.command)
            await _rset_reply(conn, timeouts.command)
        mail_reply = await conn.command(mail, timeouts.mail)
        if not mail_reply.is_positive:
            return TxResult(mail_reply)
        replies = []
        for line in rcpt_lines:
            replies.append(await conn.command(line, timeouts.rcpt))
        if not any(r.is_positive for r in replies):
            return TxResult(None, {r.index: rep for r, rep in zip(rcpts, replies, strict=True)})
        data_reply = await conn.command("DATA", timeouts.data)
    return await _finish(conn, rcpts, mail_reply, replies, data_reply, content, timeouts, lmtp)


async def _finish(
    conn: SmtpConnection,
    rcpts: Sequence[RcptLine],
    mail_reply: Reply,
    replies: list[Reply],
    data_reply: Reply,
    content: bytes,
    timeouts: Timeouts,
    lmtp: bool,
) -> TxResult:
    if not mail_reply.is_positive:
        if data_reply.code == 354:
            await _send_content(conn, b"", timeouts)
        return TxResult(mail_reply)
    result = TxResult(None, {r.index: rep for r, rep in zip(rcpts, replies, strict=True)})
    accepted = [r.index for r, rep in zip(rcpts, replies, strict=True) if rep.is_positive]
    if data_reply.code != 354:
        for index in accepted:
            result.replies[index] = data_reply
        return result
    if not accepted:
        # RFC 2920 section 3.1: a 354 despite no recipients; end it with nothing in it.
        await _send_content(conn, b"", timeouts)
        return result
    if not lmtp:
        final = await _send_content(conn, content, timeouts)
        for index in accepted:
            result.replies[index] = final
    else:
        await _lmtp_replies(conn, content, timeouts, accepted, result)
    return result


async def _rset_reply(conn: SmtpConnection, seconds: float) -> None:
    """The reply to RSET; anything but 250 (or none) means the connection is not reused."""
    try:
        reply = await conn.read_reply(seconds)
    except Broken as exc:
        raise ResetFailed(exc.reply) from None
    if reply.code != 250:
        # The rest of a pipelined group may still be answered: close rather than read on.
        conn.abort()
        raise ResetFailed(Reply(451, "4.4.0", (f"{conn.peer.label} refused RSET: {reply}",)))


async def _lmtp_replies(
    conn: SmtpConnection,
    content: bytes,
    timeouts: Timeouts,
    accepted: list[int],
    result: TxResult,
) -> None:
    """RFC 2033 section 4.2: one reply per accepted recipient, in the order of the RCPTs."""
    await _write_content(conn, content, timeouts, replies=len(accepted))
    for number, index in enumerate(accepted):
        try:
            result.replies[index] = await conn.read_reply(timeouts.data_end)
        except Broken as exc:
            if not number:
                raise
            # The replies already read are final; for the rest, nobody knows.
            for rest in accepted[number:]:
                result.replies[rest] = exc.reply
            return


async def _write_content(
    conn: SmtpConnection, content: bytes, timeouts: Timeouts, replies: int = 1
) -> None:
    data = conn.core.send_message(content, replies)
    for start in range(0, len(data), _BLOCK):
        await conn.write(data[start : start + _BLOCK], timeouts.data_block)


async def _send_content(conn: SmtpConnection, content: bytes, timeouts: Timeouts) -> Reply:
    await _write_content(conn, content, timeouts)
    return await conn.read_reply(timeouts.data_end)
