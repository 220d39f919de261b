"""The `backend` fixture: every QueueStore contract test runs against the embedded SQLite
store and the shared PostgreSQL store (a real server started by the test session,
tests/support/postgres.py), each time on a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from posthorn.queue.postgres import PostgresStore
from posthorn.queue.sqlite import SqliteStore
from support.stores import Backend


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "queue.db"
        return Backend("sqlite", lambda: SqliteStore(path))
    dsn: str = request.getfixturevalue("pg_dsn")
    return Backend("postgresql", lambda: PostgresStore(dsn, node="test"))
