"""One mail transaction of an SMTP session, and what happens to it between the end of
its data and intake.

Owns: the transaction a session builds (the MAIL event, accepted recipients, content
chunks), and, once the message is complete: the header limits (552 5.3.4), the inbound
authentication checks (SPF, DKIM, DMARC through `InboundChecker`: its
Authentication-Results field on top, forged ones removed, 550 5.7.1 on `reject`), the
envelope with the protocol name of the Received line (RFC 3848), and handing it to
`Intake.submit` (DKIM signing for clients that may relay). Does not own the replies to
commands or who the client is (`session.py`), or the queue (`intake.py`).

Returns a `Reply` for every outcome; raises nothing of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posthorn import log
from posthorn.config import Config, LimitsConfig
from posthorn.envelope import Envelope, Recipient
from posthorn.intake import Intake
from posthorn.mailauth.check import InboundChecker
from posthorn.message import headers
from posthorn.smtp import events as ev
from posthorn.smtp.reply import Reply

__all__ = ["Client", "Transaction", "finish", "header_problem", "protocol_name"]

_log = log.get("smtpd")


@dataclass(slots=True)
class Transaction:
    """What MAIL, RCPT and the message data have given so far."""

    sender: ev.Mail | None = None
    recipients: list[Recipient] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Client:
    """The client as its session knows it when a message is complete."""

    address: str  # '' for a local session (sendmail -bs)
    name: str
    helo: str
    esmtp: bool  # it said EHLO
    tls: str  # protocol and cipher; '' without TLS
    auth_user: str | None
    local_uid: int | None  # the local user of a local session, for the Received line
    may_relay: bool  # a trusted network or AUTH: its mail is ours to sign
    peer: str  # name[address], for logs


def header_problem(content: bytes, limits: LimitsConfig) -> Reply | None:
    """552 5.3.4 for a header section over the configured limits."""
    block = headers.header_block(content)
    if len(block) > limits.max_header_size:
        return Reply(552, "5.3.4", ("Error: message header section too large",))
    # Field lines minus continuation lines (RFC 5322 section 2.2.3), counted in C.
    fields = block.count(b"\r\n") - block.count(b"\r\n ") - block.count(b"\r\n\t")
    if fields > limits.max_headers:
        return Reply(552, "5.3.4", ("Error: too many header fields",))
    return None


def protocol_name(*, esmtp: bool, smtputf8: bool, tls: bool, authenticated: bool) -> str:
    """The `with` protocol of the Received line: SMTP, ESMTP or UTF8SMTP (RFC 6531
    section 3.7.3), then S for TLS and A for an authenticated client (RFC 3848)."""
    proto = ("UTF8SMTP" if smtputf8 else "ESMTP") if esmtp else "SMTP"
    return proto + ("S" if tls else "") + ("A" if authenticated else "")


def _envelope(tx: Transaction, client: Client) -> Envelope:
    assert tx.sender is not None
    params = tx.sender.params
    return Envelope(
        sender=tx.sender.sender,
        recipients=tuple(tx.recipients),
        body=params.body,
        smtputf8=params.smtputf8,
        ret=params.ret,
        envid=params.envid,
        client_address=client.address,
        client_name=client.name,
        helo=client.helo,
        protocol=protocol_name(
            esmtp=client.esmtp,
            smtputf8=params.smtputf8,
            tls=bool(client.tls),
            authenticated=bool(client.auth_user),
        ),
        auth_user=client.auth_user,
    )


async def finish(
    tx: Transaction,
    client: Client,
    config: Config,
    intake: Intake,
    checker: InboundChecker | None,
) -> Reply:
    """The reply to the end of a complete message: a refusal, or intake's answer."""
    assert tx.sender is not None
    content = b"".join(tx.chunks)
    tx.chunks.clear()
    problem = header_problem(content, config.limits)
    if problem is not None:
        return problem
    if checker is not None and (config.mailauth.check_trusted or not client.may_relay):
        verdict = await checker.check(
            client_address=client.address,
            helo=client.helo,
            sender=tx.sender.sender,
            content=content,
        )
        if verdict.reject is not None:
            _log.info("rejected by %s checks from %s", verdict.reject_by, client.peer)
            return verdict.reject
        content = verdict.header + checker.strip_forged(content)
    return await intake.submit(
        _envelope(tx, client),
        content,
        tls=client.tls,
        originating=client.may_relay,
        uid=client.local_uid,
    )
