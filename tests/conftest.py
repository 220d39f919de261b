"""Shared fixtures: real servers on free loopback ports (see tests/support/server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.postgres import PgServer, running_postgres
from support.server import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A Posthorn with the default config (local domains localhost and mx.test)."""
    srv = Server(tmp_path / "mx").start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with a given config text; all are stopped at the end of the test."""
    started: list[Server] = []

    def make(config_text: str = "", *extra_args: str, name: str = "") -> Server:
        srv = Server(tmp_path / (name or f"mx{len(started)}"), config_text, extra_args=extra_args)
        started.append(srv.start())
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throw-away PostgreSQL cluster for the whole session (tests/support/postgres.py)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """A fresh, empty database in the session's PostgreSQL cluster."""
    return pg_server.create_database()
