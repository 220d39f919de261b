"""The stored form of an envelope, shared by the SQLite and PostgreSQL stores.

Owns: an `Envelope` (without its recipients, which have rows of their own) as a JSON
text and back. Does not own the tables (`sqlite_schema.py`, `postgres_schema.py`).

Raises `ValueError` (a `json.JSONDecodeError`) for a text that is not such JSON.
"""

from __future__ import annotations

import json
from typing import Any

from posthorn.address import Address
from posthorn.envelope import Envelope, Recipient

__all__ = ["envelope_from", "envelope_json"]


# One encoder for every envelope: json.dumps with a non-default argument builds a new
# JSONEncoder per call, once per queued message.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def envelope_json(env: Envelope) -> str:
    sender = None if env.sender is None else [env.sender.local, env.sender.domain]
    return _ENCODER.encode(
        {
            "sender": sender,
            "body": env.body,
            "smtputf8": env.smtputf8,
            "ret": env.ret,
            "envid": env.envid,
            "client_address": env.client_address,
            "client_name": env.client_name,
            "helo": env.helo,
            "protocol": env.protocol,
            "auth_user": env.auth_user,
        }
    )


def envelope_from(data: str, arrival: float, recipients: tuple[Recipient, ...]) -> Envelope:
    fields: dict[str, Any] = json.loads(data)
    sender = fields.pop("sender")
    return Envelope(
        sender=None if sender is None else Address(*sender),
        recipients=recipients,
        arrival=arrival,
        **fields,
    )
