"""The errors datalayer raises, and the translation of psycopg errors into them.

Every database failure leaves the data layer as one of these kinds, raised
``from`` the original psycopg error and keeping its SQLSTATE, so callers catch
a kind (``ConflictError``) rather than a driver class, and errorkit tags the
Sentry event with the matching ``error.kind``.
"""

from __future__ import annotations

import re
from typing import ClassVar

import psycopg
from psycopg_pool import PoolTimeout, TooManyRequests

__all__ = [
    "ConflictError",
    "DataLayerError",
    "NotFoundError",
    "QueryTimeoutError",
    "TransientError",
    "ValidationError",
    "classify",
    "translate",
]


class DataLayerError(Exception):
    """Base of every error the data layer raises.

    ``sqlstate`` is the PostgreSQL error code when the error came from the
    server, else None.
    """

    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ValidationError(DataLayerError, ValueError):
    """The caller's input is wrong: unknown column, bad value, violated constraint."""

    kind = "invalid"


class NotFoundError(DataLayerError):
    """A row that had to exist does not."""

    kind = "not_found"


class ConflictError(DataLayerError):
    """A unique or exclusion constraint refused the write."""

    kind = "conflict"


class TransientError(DataLayerError):
    """The server or the pool failed for now; the same call may succeed later.

    Serialization failures (40001) and deadlocks (40P01) are transient too;
    ``Database.run_in_transaction`` retries those.
    """

    kind = "transient"


class QueryTimeoutError(DataLayerError):
    """A statement ran past the statement timeout, or a lock wait gave up."""

    kind = "timeout"


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_BY_SQLSTATE: dict[str, type[DataLayerError]] = {
    "23505": ConflictError,  # unique_violation
    "23P01": ConflictError,  # exclusion_violation
    "57014": QueryTimeoutError,  # query_canceled (statement_timeout)
    "55P03": QueryTimeoutError,  # lock_not_available (lock_timeout, NOWAIT)
    "40001": TransientError,  # serialization_failure
    "40P01": TransientError,  # deadlock_detected
    "57P01": TransientError,  # admin_shutdown (pg_terminate_backend, restart)
    "57P02": TransientError,  # crash_shutdown
    "57P03": TransientError,  # cannot_connect_now (starting up, in recovery)
    # read_only_sql_transaction: the data layer never opens a read-only transaction
    # itself, so a write refused as read-only met a server that is no longer the
    # primary (a demoted primary after a failover, a standby behind a stale address,
    # a managed server made read-only when its disk filled): an outage, not input.
    "25006": TransientError,
    # A value of a type the column or operator does not take, found by the server:
    # the parameter cast (`%s::date` with an int), the column of an INSERT, or an
    # operator for the pair (`integer LIKE text`). The SQL is the data layer's own,
    # built from the table's column list, so the caller's value is what was wrong.
    "42804": ValidationError,  # datatype_mismatch
    "42846": ValidationError,  # cannot_coerce
    "42883": ValidationError,  # undefined_function (no operator for these types)
}

# SQLSTATE classes: 08 connection exception, 53 insufficient resources,
# 22 data exception and 23 integrity violation (data errors are the caller's).
_BY_CLASS: dict[str, type[DataLayerError]] = {
    "08": TransientError,
    "53": TransientError,
    "22": ValidationError,
    "23": ValidationError,
}


# A value the server quotes at the end of its primary message:
# `invalid input syntax for type integer: "Anna"`.
_QUOTED_VALUE = re.compile(r': "(?:[^"]|"")*"$')


def _message(exc: psycopg.Error) -> str:
    # The primary message only: DETAIL and CONTEXT lines carry row values (phones,
    # names), and a value quoted at the end of the primary message is masked too.
    diag = exc.diag
    text = diag.message_primary or str(exc).split("\n", 1)[0] or type(exc).__name__
    text = _QUOTED_VALUE.sub(': "***"', text)
    if diag.constraint_name:
        text = f"{text} (constraint {diag.constraint_name})"
    return text


def translate(exc: BaseException) -> DataLayerError:
    """Return the data-layer error for a psycopg or pool error (raise it ``from exc``)."""
    if isinstance(exc, DataLayerError):
        return exc
    if isinstance(exc, PoolTimeout | TooManyRequests):
        return TransientError(f"no database connection available: {exc}")
    if not isinstance(exc, psycopg.Error):
        return DataLayerError(f"{type(exc).__name__}: {exc}")
    state = exc.sqlstate
    message = _message(exc)
    # The original travels on as __cause__ into the Sentry event and the log line's
    # traceback: it keeps its SQLSTATE and diag, but its text is the redacted one.
    exc.args = (message,)
    kind: type[DataLayerError] | None = None
    if state:
        kind = _BY_SQLSTATE.get(state) or _BY_CLASS.get(state[:2])
    if kind is None:
        if isinstance(exc, psycopg.ProgrammingError) and str(exc).startswith(
            ("cannot adapt", "cannot dump")
        ):
            kind = ValidationError  # a value psycopg cannot send: the caller's
        elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            # Lost connections have no SQLSTATE: the server went away mid-query.
            kind = TransientError
        elif isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            kind = ValidationError
        else:
            kind = DataLayerError
    return kind(message, sqlstate=state)


def classify(exc: BaseException) -> str | None:
    """errorkit classifier: the kind of a data-layer (or raw psycopg) error, else no opinion."""
    if isinstance(exc, DataLayerError):
        return exc.kind
    if isinstance(exc, psycopg.Error | PoolTimeout):
        return translate(exc).kind
    return None


def _register() -> None:
    from errorkit import register_classifier

    register_classifier(classify)


_register()
