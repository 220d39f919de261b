"""SQL for the PostgreSQL queue store: one function per operation.

Owns: the claim with `FOR UPDATE SKIP LOCKED`, fencing of results by the lease holder,
every other statement, and mapping rows to and from the queue model (the envelope's JSON
form is shared with the SQLite store). Every function takes an open connection inside a
transaction that the caller (`postgres.py`) manages. Does not own the schema
(`postgres_schema.py`), connections, batching or notifications.

Raises `psycopg.Error`; the caller turns it into `StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection

from posthorn.address import Address
from posthorn.envelope import Recipient
from posthorn.queue.codec import envelope_from, envelope_json
from posthorn.queue.model import (
    NewMessage,
    QueuedMessage,
    RcptState,
    RecipientStatus,
    RecipientUpdate,
)
from posthorn.routing.routes import fixed_route_from_text, fixed_route_to_text

__all__ = ["Conn"]

Conn = AsyncConnection[tuple[Any, ...]]

# -- mapping -------------------------------------------------------------------------


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a peer's reply could contain one.
    return value.replace("\0", "\\0")


def _recipient_status(row: tuple[Any, ...]) -> RecipientStatus:
    (_, idx, local, domain, notify, orcpt, state, attempts, reply, relay, due, warned, route) = row
    recipient = Recipient(
        Address(local, domain),
        None if notify is None else frozenset(notify.split(",")),
        orcpt,
        None if route is None else fixed_route_from_text(route),
    )
    return RecipientStatus(idx, recipient, RcptState(state), attempts, reply, relay, due, warned)


_MESSAGE_COLUMNS = "qid, envelope, arrival, size, hold, lease_owner, lease_until"
_RECIPIENT_COLUMNS = (
    "qid, idx, local, domain, notify, orcpt, state, attempts, last_reply, relay,"
    " next_attempt, warned, route"
)


async def _load(conn: Conn, messages: Sequence[tuple[Any, ...]]) -> list[QueuedMessage]:
    """QueuedMessages from message rows (in _MESSAGE_COLUMNS order) and their recipients."""
    if not messages:
        return []
    by_qid: dict[str, list[RecipientStatus]] = {row[0]: [] for row in messages}
    cursor = await conn.execute(
        f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE qid = ANY(%s) ORDER BY qid, idx",
        (list(by_qid),),
    )
    for row in await cursor.fetchall():
        by_qid[row[0]].append(_recipient_status(row))
    out = []
    for qid, env, arrival, size, hold, owner, until in sorted(messages):
        statuses = tuple(by_qid[qid])
        envelope = envelope_from(env, arrival, tuple(s.recipient for s in statuses))
        out.append(QueuedMessage(qid, envelope, size, statuses, hold, owner, until))
    return out


# -- operations ----------------------------------------------------------------------


async def insert(conn: Conn, messages: Sequence[NewMessage]) -> None:
    """Insert messages (many sessions' at once: group commit), three statements in all.

    executemany runs in libpq's pipeline mode: one round trip per statement, not per row.
    """
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO messages (qid, envelope, arrival, size, hold)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (m.qid, envelope_json(m.envelope), m.envelope.arrival, len(m.content), m.hold)
                for m in messages
            ],
        )
        # %b: the content travels in binary, not as escaped text.
        await cursor.executemany(
            "INSERT INTO contents (qid, data) VALUES (%s, %b)",
            [(m.qid, m.content) for m in messages],
        )
        await cursor.executemany(
            "INSERT INTO recipients (qid, idx, local, domain, domain_key, notify, orcpt, route)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    m.qid,
                    i,
                    r.address.local,
                    r.address.domain,
                    r.address.domain_key,
                    None if r.notify is None else ",".join(sorted(r.notify)),
                    r.orcpt,
                    None if r.route is None else fixed_route_to_text(r.route),
                )
                for m in messages
                for i, r in enumerate(m.envelope.recipients)
            ],
        )


_CLAIM = f"""
WITH due AS (
    SELECT m.qid FROM messages m
    WHERE NOT m.hold AND m.lease_until <= %(now)s
      AND m.qid IN (SELECT r.qid FROM recipients r
                    WHERE r.state = 'pending' AND r.next_attempt <= %(now)s)
    ORDER BY m.qid
    LIMIT %(limit)s
    -- Rows another node is claiming right now are skipped, not waited for: each node
    -- takes different messages and nobody blocks.
    FOR UPDATE OF m SKIP LOCKED
)
UPDATE messages m SET lease_owner = %(owner)s, lease_until = %(until)s
FROM due WHERE m.qid = due.qid
RETURNING {", ".join("m." + c.strip() for c in _MESSAGE_COLUMNS.split(","))}
"""


async def claim(
    conn: Conn, now: float, limit: int, until: float, owner: str
) -> list[QueuedMessage]:
    cursor = await conn.execute(
        _CLAIM, {"now": now, "limit": limit, "owner": owner, "until": until}
    )
    return await _load(conn, await cursor.fetchall())


async def lease(
    conn: Conn, qid: str, now: float, until: float, owner: str
) -> QueuedMessage | None:
    """Take one message for an operator's action unless another owner's lease runs.

    One UPDATE: it waits for a claim of the same row in flight (no SKIP LOCKED here: the
    operator wants this message), then re-checks the lease on the row as committed.
    """
    await conn.execute(
        "UPDATE messages SET lease_owner = %s, lease_until = %s"
        " WHERE qid = %s AND (lease_until <= %s OR lease_owner = %s)",
        (owner, until, qid, now, owner),
    )
    return await get(conn, qid)


async def content(conn: Conn, qid: str) -> bytes | None:
    cursor = await conn.execute("SELECT data FROM contents WHERE qid = %s", (qid,), binary=True)
    row = await cursor.fetchone()
    return None if row is None else bytes(row[0])


async def record(
    conn: Conn,
    qid: str,
    updates: Iterable[RecipientUpdate],
    owner: str,
    new_messages: Sequence[NewMessage],
) -> bool:
    """Apply a delivery run's results if `owner` still holds the lease; False if not.

    The fence: a node that lost its lease (it stalled past the expiry and another node
    claimed the message, maybe delivered and removed it) must not overwrite the newer
    state or add bounces for work the other node redoes.
    """
    cursor = await conn.execute(
        "UPDATE messages SET lease_owner = '', lease_until = 0"
        " WHERE qid = %s AND lease_owner = %s RETURNING qid",
        (qid, owner),
    )
    if await cursor.fetchone() is None:
        return False
    if new_messages:
        await insert(conn, new_messages)
    async with conn.cursor() as cur:
        await cur.executemany(
            "UPDATE recipients SET state = %s, attempts = attempts + 1, last_reply = %s,"
            " relay = %s, next_attempt = %s, warned = COALESCE(%s, warned)"
            " WHERE qid = %s AND idx = %s",
            [
                (
                    u.state.value,
                    _text(u.last_reply),
                    _text(u.relay),
                    u.next_attempt,
                    u.warned,
                    qid,
                    u.index,
                )
                for u in updates
            ],
        )
    await conn.execute(
        "DELETE FROM messages WHERE qid = %s AND NOT EXISTS"
        " (SELECT 1 FROM recipients WHERE qid = %s AND state = 'pending')",
        (qid, qid),
    )
    return True


async def release(conn: Conn, qid: str, owner: str) -> None:
    await conn.execute(
        "UPDATE messages SET lease_owner = '', lease_until = 0"
        " WHERE qid = %s AND lease_owner = %s",
        (qid, owner),
    )


async def release_all(conn: Conn, owner: str) -> int:
    cursor = await conn.execute(
        "UPDATE messages SET lease_owner = '', lease_until = 0 WHERE lease_owner = %s", (owner,)
    )
    return cursor.rowcount


async def renew(conn: Conn, qids: Sequence[str], owner: str, until: float) -> int:
    cursor = await conn.execute(
        "UPDATE messages SET lease_until = %s WHERE qid = ANY(%s) AND lease_owner = %s",
        (until, list(qids), owner),
    )
    return cursor.rowcount


async def next_due(conn: Conn) -> float | None:
    cursor = await conn.execute(
        "SELECT MIN(GREATEST(r.next_attempt, m.lease_until)) FROM recipients r"
        " JOIN messages m ON m.qid = r.qid WHERE r.state = 'pending' AND NOT m.hold"
    )
    row = await cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


async def get(conn: Conn, qid: str) -> QueuedMessage | None:
    cursor = await conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE qid = %s", (qid,))
    found = await _load(conn, await cursor.fetchall())
    return found[0] if found else None


async def list_all(conn: Conn) -> list[QueuedMessage]:
    cursor = await conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages")
    return await _load(conn, await cursor.fetchall())


async def set_hold(conn: Conn, qid: str, hold: bool) -> bool:
    cursor = await conn.execute("UPDATE messages SET hold = %s WHERE qid = %s", (hold, qid))
    return cursor.rowcount > 0


async def delete(conn: Conn, qid: str) -> bool:
    # contents and recipients go with it (ON DELETE CASCADE).
    cursor = await conn.execute("DELETE FROM messages WHERE qid = %s", (qid,))
    return cursor.rowcount > 0


async def reschedule(conn: Conn, when: float, qid: str | None, domain: str | None) -> int:
    sql = "UPDATE recipients SET next_attempt = %s WHERE state = 'pending'"
    args: list[Any] = [when]
    if qid is not None:
        sql += " AND qid = %s"
        args.append(qid)
    if domain is not None:
        sql += " AND domain_key = %s"
        args.append(domain.lower())
    cursor = await conn.execute(sql, args)
    return cursor.rowcount
