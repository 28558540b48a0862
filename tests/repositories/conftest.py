"""Fixtures of the repository tests: a database whose connection records every statement."""

from __future__ import annotations

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
