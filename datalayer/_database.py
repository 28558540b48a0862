# WARNING: generated from _database_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The connection pool, connection checkout and transactions, for asyncio.

This is the source of ``_database.py`` too: ``tools/async_to_sync.py`` generates
the sync ``Database`` from ``Database``, so the two differ only in awaits.
What does no I/O is shared in ``_database_base.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from datalayer._budget import IN_USE_SQL, SETTINGS_SQL, Budget, budget_from_rows, check_plan
from datalayer._config import Settings, conninfo_from_env
from datalayer._database_base import EXPECTED, DatabaseBase
from datalayer.errors import RETRYABLE_SQLSTATES, DataLayerError, TransientError, translate
from errorkit import captured

__all__ = ["Database", "PooledConnection"]

T = TypeVar("T")


class PooledConnection(psycopg.Connection[TupleRow]):
    """A pool connection that remembers when it was last handed back."""

    last_used: float = 0.0
    poller: Any = None


class Database(DatabaseBase):
    """A PostgreSQL database behind a tuned ``psycopg_pool.ConnectionPool``.

    Single statements run on autocommit connections; ``transaction()`` pins one
    connection to the current task, and every repository call inside uses it.
    Open it inside the running event loop: ``with Database.from_env()
    as db:``, or ``db.open()`` and later ``db.close()``.
    """

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        super().__init__(conninfo, settings)
        self.pool: ConnectionPool[PooledConnection] = ConnectionPool(
            conninfo,
            connection_class=PooledConnection,
            configure=self._configure,
            **self._pool_options(),
        )
        self.open()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Database:
        """A database from ``DATABASE_URL`` / ``POSTGRES_*``, else an embedded server."""
        settings = Settings.from_env(environ)
        conninfo = conninfo_from_env(environ)
        if conninfo is None:
            from datalayer._embedded import start_embedded

            conninfo = start_embedded(environ)
        return cls(conninfo, settings)

    # -- lifecycle -----------------------------------------------------------------

    def open(self) -> None:
        """Open the pool (connections are made in the background) and check the budget.

        Idempotent. A server that is down is not an error here: calls fail as
        ``TransientError`` until it is back.
        """
        if self._opened:
            return
        self.pool.open(wait=False)
        self._opened = True
        try:
            self._check_budget()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self.pool.close()

    def __enter__(self) -> Database:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------

    @staticmethod
    def _configure(conn: PooledConnection) -> None:
        conn.last_used = time.monotonic()

    def _usable(self, conn: PooledConnection) -> bool:
        """Is this idle connection alive? A socket poll; a round trip only when long idle."""
        try:
            quick = self._quick_check(conn)
            if quick is not None:
                return quick
            conn.execute("")
        except (psycopg.Error, OSError, ValueError):
            return False
        return True

    def _checkout(self, timeout: float | None = None) -> PooledConnection:
        budget = self.settings.pool_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        queued = self._queued()
        while True:
            started = time.monotonic()
            try:
                conn = self.pool.getconn(timeout=max(deadline - started, 0.001))
            except PoolClosed as exc:
                raise self._not_open(exc) from exc
            except PoolTimeout as exc:
                self._timed_out(started)
                raise translate(exc) from exc
            waited = time.monotonic() - started
            try:
                usable = self._usable(conn)
            except BaseException:
                self.pool.putconn(conn)  # interrupted: never lose the connection
                raise
            if usable:
                break
            self._replaced()
            conn.close()
            self.pool.putconn(conn)
        self._lent_out(conn, queued=queued, waited=waited)
        return conn

    def _checkin(self, conn: PooledConnection) -> None:
        self._returned(conn)
        self.pool.putconn(conn)

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """The current transaction's connection, else a pooled autocommit one.

        psycopg errors raised inside leave as ``datalayer.errors`` kinds.
        """
        return _Lease(self)

    # -- transactions --------------------------------------------------------------------

    def transaction(
        self, *, report: bool = True
    ) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A transaction (a savepoint when nested), yielding its connection.

        It is an errorkit boundary (component ``database``): a failure rolls back
        this level, is reported once and re-raised. ``report=False`` is for plain
        code whose caller reports (the repositories' ``bulk_upsert``): the same
        transaction, no boundary.
        """
        return self._transaction(report=report)

    @contextmanager
    def _transaction(self, *, report: bool) -> Iterator[psycopg.Connection[Any]]:
        outer = self._current()
        operation = "savepoint" if outer is not None else "transaction"
        boundary = captured("database", operation, expected=EXPECTED) if report else nullcontext()
        with boundary:
            if outer is not None:
                try:
                    with outer.transaction():
                        yield outer
                except psycopg.Error as exc:
                    raise translate(exc) from exc
                return
            conn = self._checkout()
            token = self._enter_transaction(conn)
            try:
                with conn.transaction():
                    if self.settings.pgbouncer:
                        conn.execute(
                            f"SET LOCAL statement_timeout = {self._statement_timeout_ms()}"
                        )
                    yield conn
            except psycopg.Error as exc:
                raise translate(exc) from exc
            finally:
                self._leave_transaction(token)
                self._checkin(conn)

    def run_in_transaction(
        self,
        fn: Callable[[], T],
        *,
        retries: int = 3,
    ) -> T:
        """Run ``fn()`` in a transaction; retry it on serialization failure or deadlock.

        Up to ``retries`` more attempts, with jittered exponential backoff. Nested in
        a running transaction it becomes a savepoint and is not retried (the outer
        transaction is what failed). Reported once, as component ``database``.
        """
        retries = self._check_retries(retries)
        if self.in_transaction():
            with self.transaction():
                return fn()
        with captured("database", "run_in_transaction", expected=EXPECTED):
            attempt = 0
            while True:
                try:
                    with self._transaction(report=False):
                        return fn()
                except TransientError as exc:
                    if exc.sqlstate not in RETRYABLE_SQLSTATES or attempt >= retries:
                        raise
                    attempt += 1
                    time.sleep(self._retry_delay(attempt, retries, exc.sqlstate))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- monitoring ------------------------------------------------------------------

    def ping(self, *, timeout: float | None = None) -> float:
        """One ``SELECT 1`` round trip through the pool, in milliseconds.

        ``timeout`` bounds the wait for a connection (default: the pool timeout);
        past it the ping raises ``TimeoutError``.
        """
        conn = self._current()
        lease = None
        if conn is None:
            try:
                conn = lease = self._checkout(timeout)
            except TransientError as exc:
                if timeout is None or not isinstance(exc.__cause__, PoolTimeout):
                    raise
                raise TimeoutError(f"no connection for the ping within {timeout}s") from exc
        try:
            started = time.perf_counter()
            cur = conn.execute("SELECT 1")
            cur.fetchone()
            return (time.perf_counter() - started) * 1000
        except psycopg.Error as exc:
            raise translate(exc) from exc
        finally:
            if lease is not None:
                self._checkin(lease)

    def budget(
        self, *, expected_services: int | None = None, max_size: int | None = None
    ) -> Budget:
        """This service's share of the server's connection slots (see ``datalayer._budget``)."""
        services = (
            self.settings.expected_services if expected_services is None else expected_services
        )
        size = self.settings.max_connections if max_size is None else max_size
        check_plan(services, size)
        with self.connection() as conn:
            settings = (conn.execute(SETTINGS_SQL)).fetchall()
            in_use = (conn.execute(IN_USE_SQL)).fetchall()
        return budget_from_rows(settings, in_use, expected_services=services, max_size=size)

    def _check_budget(self) -> None:
        try:
            budget = self.budget()
        except DataLayerError as exc:
            self._budget_unchecked(exc)
            return
        self._judge_budget(budget)


class _Lease:
    """``Database.connection()``: a class, not a generator, for the hot path's sake."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: PooledConnection | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        current = self._db._current()
        if current is not None:
            return current  # type: ignore[no-any-return]
        self._conn = self._db._checkout()
        return self._conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._db._checkin(conn)
        if isinstance(exc, psycopg.Error):
            raise translate(exc) from exc
