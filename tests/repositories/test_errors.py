"""datalayer.errors: psycopg errors translated to kinds, SQLSTATE kept, classified for errorkit."""

from __future__ import annotations

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
from errorkit import classify


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
        (pg.CannotConnectNow("starting"), TransientError, "transient"),
        (pg.TooManyConnections("full"), TransientError, "transient"),
        (pg.ConnectionFailure("gone"), TransientError, "transient"),
        (psycopg.OperationalError("server closed the connection"), TransientError, "transient"),
        (PoolTimeout("no connection"), TransientError, "transient"),
        (pg.CheckViolation("check"), ValidationError, "invalid"),
        (pg.NotNullViolation("null"), ValidationError, "invalid"),
        (pg.ForeignKeyViolation("fk"), ValidationError, "invalid"),
        (pg.InvalidTextRepresentation("bad int"), ValidationError, "invalid"),
        (pg.NumericValueOutOfRange("too big"), ValidationError, "invalid"),
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
