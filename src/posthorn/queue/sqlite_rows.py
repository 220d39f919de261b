"""SQL for the SQLite queue store: one function per operation.

Owns: mapping rows to and from the queue model, and each statement. Every function
takes an open connection inside a transaction that the caller (`sqlite.py`) manages.
Does not own the tables and their migrations (`sqlite_schema.py`), the stored form of an
envelope (`codec.py`), or threading and commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

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

# -- mapping -------------------------------------------------------------------------


def _recipient_status(row: sqlite3.Row | tuple[Any, ...]) -> RecipientStatus:
    (_, idx, local, domain, _, notify, orcpt, state, attempts, reply, relay, due, warned) = row[
        :13
    ]
    route = row[13]
    recipient = Recipient(
        Address(local, domain),
        None if notify is None else frozenset(notify.split(",")),
        orcpt,
        None if route is None else fixed_route_from_text(route),
    )
    return RecipientStatus(
        idx, recipient, RcptState(state), attempts, reply, relay, due, bool(warned)
    )


def _load(conn: sqlite3.Connection, qids: Sequence[str]) -> list[QueuedMessage]:
    if not qids:
        return []
    marks = ",".join("?" * len(qids))
    by_qid: dict[str, list[RecipientStatus]] = {q: [] for q in qids}
    for row in conn.execute(
        f"SELECT * FROM recipients WHERE qid IN ({marks}) ORDER BY qid, idx", tuple(qids)
    ):
        by_qid[row[0]].append(_recipient_status(row))
    out = []
    for qid, env, arrival, size, hold, owner, until in conn.execute(
        f"SELECT * FROM messages WHERE qid IN ({marks}) ORDER BY qid", tuple(qids)
    ):
        statuses = tuple(by_qid[qid])
        envelope = envelope_from(env, arrival, tuple(s.recipient for s in statuses))
        out.append(QueuedMessage(qid, envelope, size, statuses, bool(hold), owner, until))
    return out


# -- operations ----------------------------------------------------------------------


# Where a content is kept: in the row itself, or (segment name, offset) in a segment.
SegmentRef = tuple[str, int]
StoredContent = bytes | tuple[str, int, int]  # inline, or (segment, offset, length)


def insert(conn: sqlite3.Connection, message: NewMessage, ref: SegmentRef | None = None) -> None:
    """Insert a new message; with `ref`, its content was appended to that segment."""
    env = message.envelope
    conn.execute(
        "INSERT INTO messages (qid, envelope, arrival, size, hold) VALUES (?, ?, ?, ?, ?)",
        (message.qid, envelope_json(env), env.arrival, len(message.content), message.hold),
    )
    if ref is None:
        sql = "INSERT INTO contents (qid, data) VALUES (?, ?)"
        conn.execute(sql, (message.qid, message.content))
    else:
        conn.execute(
            "INSERT INTO contents (qid, data, segment, seg_offset, seg_length)"
            " VALUES (?, x'', ?, ?, ?)",
            (message.qid, ref[0], ref[1], len(message.content)),
        )
    conn.executemany(
        "INSERT INTO recipients (qid, idx, local, domain, domain_key, notify, orcpt, route)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                message.qid,
                i,
                r.address.local,
                r.address.domain,
                r.address.domain_key,
                None if r.notify is None else ",".join(sorted(r.notify)),
                r.orcpt,
                None if r.route is None else fixed_route_to_text(r.route),
            )
            for i, r in enumerate(env.recipients)
        ],
    )


def claim(
    conn: sqlite3.Connection, now: float, limit: int, until: float, owner: str
) -> list[QueuedMessage]:
    # Earliest due first, then oldest: the order of the recipients_due_order index, so
    # that the scan stops after `limit` messages however many are due. A message with
    # many recipients may fill the window; then fewer messages come back this time.
    rows = conn.execute(
        "SELECT r.qid FROM recipients r JOIN messages m ON m.qid = r.qid"
        " WHERE r.state = 'pending' AND r.next_attempt <= ? AND m.hold = 0"
        " AND m.lease_until <= ? ORDER BY r.next_attempt, r.qid LIMIT ?",
        (now, now, limit * 4),
    )
    qids = list(dict.fromkeys(row[0] for row in rows))[:limit]
    conn.executemany(
        "UPDATE messages SET lease_owner = ?, lease_until = ? WHERE qid = ?",
        [(owner, until, q) for q in qids],
    )
    return _load(conn, qids)


def lease(
    conn: sqlite3.Connection, qid: str, now: float, until: float, owner: str
) -> QueuedMessage | None:
    # One statement inside the store's write transaction: a runner's claim of the same
    # message (in another process too) is either before it or after it, never between.
    conn.execute(
        "UPDATE messages SET lease_owner = ?, lease_until = ?"
        " WHERE qid = ? AND (lease_until <= ? OR lease_owner = ?)",
        (owner, until, qid, now, owner),
    )
    return get(conn, qid)


def content(conn: sqlite3.Connection, qid: str) -> StoredContent | None:
    row = conn.execute(
        "SELECT data, segment, seg_offset, seg_length FROM contents WHERE qid = ?", (qid,)
    ).fetchone()
    if row is None:
        return None
    data, segment, offset, length = row
    return bytes(data) if segment is None else (segment, offset, length)


def segment_used(conn: sqlite3.Connection, segment: str) -> bool:
    found = conn.execute("SELECT 1 FROM contents WHERE segment = ? LIMIT 1", (segment,))
    return found.fetchone() is not None


def segment_contents(conn: sqlite3.Connection, segment: str) -> list[tuple[str, int, int]]:
    """(qid, offset, length) of every content kept in `segment`."""
    rows = conn.execute(
        "SELECT qid, seg_offset, seg_length FROM contents WHERE segment = ?", (segment,)
    )
    return [(qid, offset, length) for qid, offset, length in rows]


def inline_content(conn: sqlite3.Connection, qid: str, data: bytes) -> None:
    """Move a content out of its segment into its row (compaction)."""
    conn.execute(
        "UPDATE contents SET data = ?, segment = NULL, seg_offset = NULL, seg_length = NULL"
        " WHERE qid = ?",
        (data, qid),
    )


def holds_lease(conn: sqlite3.Connection, qid: str, owner: str) -> bool:
    row = conn.execute("SELECT lease_owner FROM messages WHERE qid = ?", (qid,)).fetchone()
    return row is not None and row[0] == owner


def record(
    conn: sqlite3.Connection, qid: str, updates: Iterable[RecipientUpdate], owner: str
) -> None:
    """Apply a delivery run's results; the caller checked `holds_lease` first."""
    conn.executemany(
        "UPDATE recipients SET state = ?, attempts = attempts + 1, last_reply = ?, relay = ?,"
        " next_attempt = ?, warned = COALESCE(?, warned) WHERE qid = ? AND idx = ?",
        [
            (u.state.value, u.last_reply, u.relay, u.next_attempt, u.warned, qid, u.index)
            for u in updates
        ],
    )
    # `+state`: look the message up by its key, not through the (state, ...) index, which
    # would walk every pending recipient of the whole queue.
    pending = conn.execute(
        "SELECT 1 FROM recipients WHERE qid = ? AND +state = 'pending' LIMIT 1", (qid,)
    ).fetchone()
    if pending is None:
        delete(conn, qid)
    else:
        release(conn, qid, owner)


def release(conn: sqlite3.Connection, qid: str, owner: str) -> None:
    conn.execute(
        "UPDATE messages SET lease_owner = '', lease_until = 0 WHERE qid = ? AND lease_owner = ?",
        (qid, owner),
    )


def release_all(conn: sqlite3.Connection, owner: str) -> int:
    cursor = conn.execute(
        "UPDATE messages SET lease_owner = '', lease_until = 0 WHERE lease_owner = ?", (owner,)
    )
    return cursor.rowcount


def renew(conn: sqlite3.Connection, qids: Sequence[str], owner: str, until: float) -> int:
    cursor = conn.executemany(
        "UPDATE messages SET lease_until = ? WHERE qid = ? AND lease_owner = ?",
        [(until, qid, owner) for qid in qids],
    )
    return cursor.rowcount


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT MIN(MAX(r.next_attempt, m.lease_until)) FROM recipients r"
        " JOIN messages m ON m.qid = r.qid WHERE r.state = 'pending' AND m.hold = 0"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def get(conn: sqlite3.Connection, qid: str) -> QueuedMessage | None:
    found = _load(conn, [qid])
    return found[0] if found else None


def list_all(conn: sqlite3.Connection) -> list[QueuedMessage]:
    return _load(conn, [row[0] for row in conn.execute("SELECT qid FROM messages")])


def set_hold(conn: sqlite3.Connection, qid: str, hold: bool) -> bool:
    cursor = conn.execute("UPDATE messages SET hold = ? WHERE qid = ?", (hold, qid))
    return cursor.rowcount > 0


def delete(conn: sqlite3.Connection, qid: str) -> bool:
    cursor = conn.execute("DELETE FROM messages WHERE qid = ?", (qid,))
    conn.execute("DELETE FROM contents WHERE qid = ?", (qid,))
    conn.execute("DELETE FROM recipients WHERE qid = ?", (qid,))
    return cursor.rowcount > 0


def reschedule(conn: sqlite3.Connection, when: float, qid: str | None, domain: str | None) -> int:
    # With a queue id, `+state` makes SQLite find the rows by key rather than by walking
    # every pending recipient through the (state, ...) index.
    sql = "UPDATE recipients SET next_attempt = ? WHERE "
    sql += "+state = 'pending'" if qid is not None else "state = 'pending'"
    args: list[Any] = [when]
    if qid is not None:
        sql += " AND qid = ?"
        args.append(qid)
    if domain is not None:
        sql += " AND domain_key = ?"
        args.append(domain.lower())
    return conn.execute(sql, args).rowcount
