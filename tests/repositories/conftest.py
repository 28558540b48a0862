"""Fixtures of the repository tests: databases whose statements are recorded or watched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from datalayer import Database, Settings


class StatementLog(list[str]):
    """The text of every statement the recording connection sent, in order."""


@pytest.fixture
def recording_db(pg_url: str, db: Database) -> Iterator[tuple[Database, StatementLog]]:
    """A one-connection Database whose connection logs every execute and COPY.

    Any SQL a repository sends goes through ``Connection.cursor()``, hence through
    this cursor class; a call that sends nothing leaves the log untouched.
    """
    log = StatementLog()

    class RecordingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            log.append(_text(query, self.connection))
            return super().execute(query, params, **kwargs)

        def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
            log.append(_text(statement, self.connection))
            return super().copy(statement, params, **kwargs)

    db = Database(pg_url, Settings(max_connections=1, service_name="recording"))
    with db.connection() as conn:
        conn.cursor_factory = RecordingCursor
    log.clear()
    try:
        yield db, log
    finally:
        db.close()


def _text(query: Any, conn: psycopg.Connection[Any]) -> str:
    if isinstance(query, bytes):
        return query.decode()
    if isinstance(query, str):
        return query
    return str(query.as_string(conn))


class ServerActivity:
    """What the server itself saw from one Database's connections (by application_name).

    Independent of how the data layer talks to the server (cursors, pipelines,
    COPY, pool checks, new connections): ``pg_stat_activity`` has one row per
    backend, with the start time of the last statement it ran.
    """

    def __init__(self, admin_url: str, application_name: str) -> None:
        self.admin_url = admin_url
        self.application_name = application_name

    def snapshot(self) -> dict[int, Any]:
        """Backend pid -> start of its last statement, for this application's backends."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, query_start FROM pg_stat_activity WHERE application_name = %s",
                [self.application_name],
            ).fetchall()
        return {pid: started for pid, started in rows}


@pytest.fixture
def watched_db(pg_url: str, db: Database) -> Iterator[tuple[Database, ServerActivity]]:
    """A Database with a pool of two, one connection open and idle, watched from the server."""
    name = f"watched-{uuid.uuid4().hex[:12]}"
    watched = Database(pg_url, Settings(max_connections=2, service_name=name))
    with watched.connection() as conn:
        conn.execute("SELECT 1")
    try:
        yield watched, ServerActivity(pg_url, name)
    finally:
        watched.close()
