"""datalayer.errors: psycopg errors translated to kinds, SQLSTATE kept, classified for errorkit."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import psycopg.errors as pg
import pytest
from psycopg_pool import PoolTimeout

from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    QueryTimeoutError,
    TransientError,
    ValidationError,
    translate,
)
from errorkit import captured, classify
from errorkit.testing import capture_events, capture_logs


@pytest.mark.parametrize(
    ("error", "kind", "errorkit_kind"),
    [
        (pg.UniqueViolation("dup"), ConflictError, "conflict"),
        (pg.ExclusionViolation("overlap"), ConflictError, "conflict"),
        (pg.QueryCanceled("statement timeout"), QueryTimeoutError, "timeout"),
        (pg.LockNotAvailable("nowait"), QueryTimeoutError, "timeout"),
        (pg.SerializationFailure("serialize"), TransientError, "transient"),
        (pg.DeadlockDetected("deadlock"), TransientError, "transient"),
        (pg.AdminShutdown("terminated"), TransientError, "transient"),
        (pg.CrashShutdown("crashed"), TransientError, "transient"),
        (pg.CannotConnectNow("starting"), TransientError, "transient"),
        (pg.ReadOnlySqlTransaction("read-only"), TransientError, "transient"),
        (pg.TooManyConnections("full"), TransientError, "transient"),
        (pg.ConnectionFailure("gone"), TransientError, "transient"),
        (psycopg.OperationalError("server closed the connection"), TransientError, "transient"),
        (PoolTimeout("no connection"), TransientError, "transient"),
        (pg.CheckViolation("check"), ValidationError, "invalid"),
        (pg.NotNullViolation("null"), ValidationError, "invalid"),
        (pg.ForeignKeyViolation("fk"), ValidationError, "invalid"),
        (pg.InvalidTextRepresentation("bad int"), ValidationError, "invalid"),
        (pg.NumericValueOutOfRange("too big"), ValidationError, "invalid"),
        (pg.DatatypeMismatch("int column, text[] value"), ValidationError, "invalid"),
        (pg.CannotCoerce("cannot cast smallint to date"), ValidationError, "invalid"),
        (pg.UndefinedFunction("integer ~~ unknown"), ValidationError, "invalid"),
        (pg.UndefinedColumn("no column"), DataLayerError, "internal"),
        (pg.SyntaxError("bad sql"), DataLayerError, "internal"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_translation_and_classification(
    error: Exception, kind: type[DataLayerError], errorkit_kind: str
) -> None:
    translated = translate(error)
    assert type(translated) is kind
    assert translated.sqlstate == getattr(error, "sqlstate", None)
    assert classify(translated) == errorkit_kind
    assert classify(error) == errorkit_kind  # a raw psycopg error that escaped, too


def test_kinds_and_their_errorkit_names() -> None:
    assert isinstance(ValidationError("x"), ValueError)
    for error, name in [
        (ValidationError("x"), "invalid"),
        (NotFoundError("x"), "not_found"),
        (ConflictError("x"), "conflict"),
        (TransientError("x"), "transient"),
        (QueryTimeoutError("x"), "timeout"),
        (DataLayerError("x"), "internal"),
    ]:
        assert classify(error) == name
        assert error.sqlstate is None
    assert classify(KeyError("not ours")) == "internal"


def test_row_values_never_leave_in_the_message_or_the_cause(clean_db: Any) -> None:
    """The server's DETAIL quotes the failing row; the cause travels into reports."""
    name = f"Anna {uuid.uuid4().hex}"  # made at run time: source lines travel in events too
    with clean_db.connection() as conn:
        conn.execute("CREATE TEMP TABLE people (name text, age int CHECK (age > 0))")

        # Arguments described, not shown (as the facade does), so only the error is at stake.
        @captured("test", "write_person", extra=lambda arguments: {"fields": len(arguments)})
        def write(name: str, age: object) -> None:
            try:
                conn.execute("INSERT INTO people VALUES (%s, %s)", (name, age))
            except psycopg.Error as exc:
                raise translate(exc) from exc

        with capture_events() as events, capture_logs() as logs:
            with pytest.raises(ValidationError) as check:
                write(name, -1)
            with pytest.raises(ValidationError) as syntax:
                write("x", name)
        conn.execute("DROP TABLE people")
    assert check.value.sqlstate == "23514"
    assert "t_age_check" not in str(check.value)  # the constraint of *this* table is named
    assert "people_age_check" in str(check.value)
    assert syntax.value.sqlstate == "22P02"
    for error in (check.value, syntax.value):
        assert isinstance(error.__cause__, psycopg.Error)
        assert error.__cause__.sqlstate == error.sqlstate  # the original keeps its diag
        assert name not in str(error) and name not in str(error.__cause__)
    reported = json.dumps(events, default=str) + json.dumps(logs, default=str)
    assert len(events) == 2 and "operation_failed" in reported
    assert name.split()[1] not in reported
    assert "Failing row" not in reported
