"""`posthorn explain` output: an `Explanation` as text (a walk-through in the manner of
`host -t mx` and `mail -v`) or as JSON.

Owns: the wording and layout of the text, the duration format (`1d2h30m`), and the JSON
shape (the model's fields, replies as their text). Pure: values in, a string out. Does
not own the facts (`explainer.py`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from posthorn.explain.model import (
    Cname,
    Delivery,
    Explanation,
    FileAppend,
    FinalRecipient,
    Host,
    Mailbox,
    PipeCommand,
    Refusal,
    Relay,
    RemotePlan,
    Timeline,
    Verdict,
)
from posthorn.smtp.reply import Reply

__all__ = ["duration", "to_json", "to_text"]

_TLS = {
    "none": "no STARTTLS: the message goes in plain text",
    "opportunistic": "STARTTLS when offered, certificate not checked (RFC 7435); else plain text",
    "required": "STARTTLS or the delivery is deferred (4.7.4); certificate not checked",
    "verify": "STARTTLS with a certificate valid for the host name, or the delivery is deferred",
}
_DELIVERIES = (Mailbox, FileAppend, PipeCommand, Refusal, Relay)
_VERDICT = {
    Verdict.DELIVERABLE: "deliverable",
    Verdict.NO_USER: "not deliverable: no such user",
    Verdict.NO_HOST: "not deliverable: no such domain or host",
    Verdict.UNAVAILABLE: "not deliverable",
    Verdict.TEMPORARY: "not deliverable now: temporary failure, it would be retried",
}


def duration(seconds: float) -> str:
    """90061 -> '1d1h1m1s'; 0 -> '0s'."""
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def _cnames(chain: tuple[Cname, ...], indent: str) -> list[str]:
    return [f"{indent}{c.alias} is an alias for {c.target}" for c in chain]


def _host(number: int, host: Host, port: int) -> list[str]:
    notes = []
    if host.preference is not None:
        notes.append(f"preference {host.preference}")
    if host.shuffled_with:
        notes.append(f"shuffled with {', '.join(host.shuffled_with)}")
    head = f"  {number}. {host.name}" + (f" ({'; '.join(notes)})" if notes else "")
    lines = [head, *_cnames(host.cnames, "       ")]
    if host.cnames and host.preference is not None:
        lines.append("       (an MX should name a host, not an alias: RFC 2181 section 10.3)")
    if host.problem is not None:
        return [*lines, f"       not tried: {host.problem}"]
    owner = host.cnames[-1].target if host.cnames else host.name
    for index, address in enumerate(host.addresses):
        kind = "AAAA" if ":" in address else "A"
        tried = "" if index < host.tried else "  (not tried: address limit per delivery)"
        lines.append(f"       {owner} IN {kind} {address}, port {port}{tried}")
    return lines


def _route_line(plan: RemotePlan) -> str:
    target = plan.target
    if target.source:
        how = "a relay host, no MX lookup" if target.mx_lookup is None else "its MX records"
        return f"Route: {target.source} = {target.label} ({how})"
    if target.mx_lookup is None:
        return f"Route: {target.label} is an address literal: no MX lookup (RFC 5321 5.1)"
    return f"Route: no [routes] entry: the MX records of {plan.domain}"


def _conclusion(plan: RemotePlan) -> list[str]:
    name = plan.target.mx_lookup or plan.domain
    return {
        "implicit": [f"  no MX records: implicit MX, {name} itself (RFC 5321 section 5.1)"],
        "null": [f"  null MX: {name} accepts no mail (RFC 7505)"],
        "nxdomain": [f"  {name} does not exist (NXDOMAIN)"],
        "dns failure": ["  the lookup failed; delivery would be retried"],
        "loop": ["  this host is the best mail exchanger: nowhere better to send it"],
    }.get(plan.conclusion, [])


def _remote(plan: RemotePlan) -> list[str]:
    lines = [f"Relay to {plan.domain}", "  " + _route_line(plan)]
    if plan.target.mx_lookup is not None:
        lines += _cnames(plan.cnames, "  ")
        owner = plan.cnames[-1].target if plan.cnames else plan.target.mx_lookup
        for record in plan.records:
            lines.append(f"  {owner} IN MX {record.preference} {record.host or '.'}")
        lines += _conclusion(plan)
    for name in plan.skipped:
        lines.append(f"  {name}: skipped, not better than this host (RFC 5321 section 5.1)")
    if plan.hosts:
        lines.append("  Hosts in the order they are tried:")
        for number, host in enumerate(plan.hosts, 1):
            lines += ["  " + line for line in _host(number, host, plan.port)]
    if plan.hosts:
        lines.append(f"  TLS: {plan.tls} ({plan.tls_source})")
        lines.append(f"    {_TLS.get(plan.tls, plan.tls)}")
    if plan.auth_user is not None:
        where = f"smtp_client.credentials.{plan.target.host}"
        tls = "also without TLS" if plan.auth_without_tls else "only over TLS"
        lines.append(f"  AUTH as {plan.auth_user} ({where}), {tls}")
    if plan.failure is not None:
        lines.append(f"  Outcome: {plan.failure}")
    return lines


def _delivery(delivery: Delivery) -> list[str]:
    if isinstance(delivery, Mailbox):
        return [f"  local delivery to {delivery.user}: {delivery.format} {delivery.path}"]
    if isinstance(delivery, FileAppend):
        return [f"  appended to the file {delivery.path} (as user {delivery.user})"]
    if isinstance(delivery, PipeCommand):
        return [f"  piped to the command {delivery.command!r} (as user {delivery.user})"]
    if isinstance(delivery, Refusal):
        return [f"  fails: {delivery.reply}"]
    return ["  " + line for line in _remote(delivery.plan)]


def _recipient(recipient: FinalRecipient) -> list[str]:
    lines = [f"<{recipient.address}>"]
    if recipient.via:
        lines.append(f"  via {' -> '.join(f'<{a}>' for a in recipient.via)}")
    if recipient.sender is not None:
        lines.append(f"  envelope sender <{recipient.sender}> (the list's owner)")
    return lines + _delivery(recipient.delivery)


def _timeline(t: Timeline) -> list[str]:
    first = [duration(d) for d in t.delays[:-1]]
    every = f"then every {duration(t.delays[-1])}"
    shown = [f"+{duration(a)}" if a else "+0" for a in t.attempts[:8]]
    more = f", ... ({len(t.attempts)} attempts in all)" if len(t.attempts) > 8 else ""
    lines = [
        f"Retries (queue.retry = {t.profile!r}):",
        f"  a deferred delivery is tried again after {', '.join([*first, every])}",
        f"  attempts at {', '.join(shown)}{more}",
    ]
    if t.warn_at is not None:
        lines.append(
            f"  delay warning to the sender at +{duration(t.warn_at)}"
            f" (the first failed attempt after {duration(t.warn_after)})"
        )
    lines.append(
        f"  bounced to the sender at +{duration(t.give_up_at)}"
        f" (the first failed attempt after {duration(t.give_up_after)})"
    )
    return lines


def to_text(e: Explanation) -> str:
    lines = [f"Explaining <{e.address}>"]
    if e.destination != e.address:
        lines.append(f"  the address names <{e.destination}> (resolved as at RCPT)")
    domain = e.destination.rpartition("@")[2]
    where = "a local domain" if e.local else "not a local domain: the mail is relayed"
    lines.append(f"  {domain} is {where}")
    if not e.local:
        # RFC 5321 section 3.6.2: no open relay (receive/session.py decides at RCPT).
        lines.append("  (RCPT accepts it from relay.trusted_networks or after AUTH only)")
    if e.refusal is not None:
        if e.refusal.at_rcpt:
            lines.append(f"  RCPT TO is refused: {e.refusal.reply}")
        else:
            lines.append(f"  the end of DATA is answered: {e.refusal.reply}")
    for x in e.expansions:
        lines.append(f"  <{x.address}>: {x.kind} ({x.source}): {', '.join(x.targets)}")
        if x.owner is not None:
            lines.append(f"    its copies go out from <{x.owner}> (owner- alias)")
    if e.recipients:
        count = len(e.recipients)
        lines.append(f"Final recipients ({count}):" if count > 1 else "Final recipient:")
    for recipient in e.recipients:
        lines += ["  " + line for line in _recipient(recipient)]
    if e.timeline is not None:
        lines += _timeline(e.timeline)
    lines.append(f"Result: {_VERDICT[e.verdict]}")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Reply):
        return str(value)
    if isinstance(value, Verdict):
        return value.name.lower()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, _DELIVERIES):
            fields = {"kind": type(value).__name__.lower(), **fields}
        return fields
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_json(e: Explanation) -> str:
    return json.dumps(_plain(e), indent=2, ensure_ascii=False) + "\n"
