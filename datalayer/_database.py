# WARNING: generated from _database_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The connection pool, connection checkout and transactions, for asyncio.

This is the source of ``_database.py`` too: ``tools/async_to_sync.py`` generates
the sync ``Database`` from ``Database``, so the two differ only in awaits.
What does no I/O is shared in ``_database_base.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from datalayer._breaker import Admission
from datalayer._budget import IN_USE_SQL, SETTINGS_SQL, Budget, budget_from_rows, check_plan
from datalayer._config import Settings, conninfo_from_env
from datalayer._database_base import (
    EXPECTED,
    IDLE_GRAB_S,
    READ_ONLY_SQLSTATE,
    WAIT_SLICE_S,
    DatabaseBase,
    server_gone,
)
from datalayer.errors import RETRYABLE_SQLSTATES, TransientError, translate
from errorkit import captured

__all__ = ["Database", "PooledConnection"]

T = TypeVar("T")


class PooledConnection(psycopg.Connection[TupleRow]):
    """A pool connection that remembers when it was last handed back."""

    last_used: float = 0.0
    expires_at: float = math.inf
    poller: Any = None

    @classmethod
    def connect(  # type: ignore[override]  # psycopg's keywords pass through kwargs
        cls, conninfo: str = "", *, observer: DatabaseBase | None = None, **kwargs: Any
    ) -> Self:
        """Connect; a failed attempt is reported to ``observer`` (the database's breaker)."""
        try:
            return super().connect(conninfo, **kwargs)
        except Exception as exc:
            if observer is not None:
                observer._connect_failed(exc)
            raise


class Database(DatabaseBase):
    """A PostgreSQL database behind a tuned ``psycopg_pool.ConnectionPool``.

    Single statements run on autocommit connections; ``transaction()`` pins one
    connection to the current task, and every repository call inside uses it.
    Open it with ``with Database.from_env() as db:``, or
    ``db.open()`` and later ``db.close()`` (an async pool is opened
    inside the running event loop; the sync ``Database`` opens in its
    constructor). Neither the constructor nor ``open()`` waits on the network.

    While the server is unreachable (the pool's last connection attempt failed),
    calls fail at once as ``TransientError``; one caller at a time, every second
    at most, probes whether it is back. A connection whose server went away or
    became read-only (a failover) is closed, never handed out again.
    """

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        super().__init__(conninfo, settings)
        self.pool: ConnectionPool[PooledConnection] = ConnectionPool(
            self._conninfo,
            connection_class=PooledConnection,
            configure=self._configure,
            **self._pool_options(),
        )
        self.open()  # waits on nothing: the pool connects in the background

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
        """Open the pool; connections are made in the background, and never waited for here.

        Idempotent. The connection budget is checked on the pool's first connection.
        A server that is down is not an error here: calls fail as ``TransientError``
        until it is back.
        """
        if self._opened:
            return
        self.pool.open(wait=False)
        self._opened = True

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self._unpark_all()
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

    def _configure(self, conn: PooledConnection) -> None:
        """Every new pool connection: the server is reachable; the first checks the budget."""
        conn.last_used = time.monotonic()
        conn.expires_at = conn.last_used + self.settings.max_lifetime
        self._connected()
        if not self._budget_checked:
            self._budget_checked = True
            self._check_budget(conn)

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
        breaker = self._breaker
        if breaker.closed:
            return self._wait_for_connection(budget)
        admission = breaker.admit(self._probe_timeout(budget))
        if admission is Admission.REJECT:
            # Unreachable, no probe due: an idle connection may still serve, else fail now.
            if not self.stats()["pool_available"]:
                raise self._unreachable()
            return self._wait_for_connection(min(budget, IDLE_GRAB_S))
        try:
            conn = self._wait_for_connection(self._probe_timeout(budget))
        except BaseException:
            breaker.probe_done()
            raise
        self._connected()
        return conn

    def _wait_for_connection(self, budget: float) -> PooledConnection:
        """A live connection within ``budget`` seconds, else ``TransientError``.

        A caller queued behind busy connections waits in one piece (the pool serves
        waiters in order); one waiting for a new connection waits in short slices and
        fails at once when a connection attempt fails meanwhile.
        """
        first = time.monotonic()
        deadline = first + budget
        queued = self._queued()
        in_slices: bool | None = None
        failures = self._breaker.failures
        while True:
            started = time.monotonic()
            conn: PooledConnection | None = self._unpark()
            if conn is None:
                remaining = deadline - started
                if in_slices is None:
                    # Only a pool that can still grow may be making a connection for
                    # this caller; one at its maximum serves waiters in order, and a
                    # caller that gave up a slice would lose its place in the queue.
                    in_slices = not queued and self._pool_can_grow()
                wait = min(remaining, WAIT_SLICE_S) if in_slices else remaining
                try:
                    conn = self.pool.getconn(timeout=max(wait, 0.001))
                except PoolClosed as exc:
                    raise self._not_open(exc) from exc
                except PoolTimeout as exc:
                    if self._breaker.failures != failures and not self._breaker.closed:
                        raise self._unreachable() from None
                    if time.monotonic() < deadline:
                        continue
                    self._timed_out(first)
                    raise translate(exc) from exc
                finally:
                    self._pool_wait_done()
            waited = time.monotonic() - first
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

    def _checkin(self, conn: PooledConnection, failure: BaseException | None = None) -> None:
        """Hand ``conn`` back; closed first if ``failure`` showed its server is gone."""
        self._returned(conn)
        if failure is not None and server_gone(failure):
            self._replaced("server gone")
            try:
                if not conn.closed:
                    conn.close()
                if getattr(failure.__cause__ or failure, "sqlstate", None) == READ_ONLY_SQLSTATE:
                    # Read-only: every connection to that server is (a failover demoted it).
                    self.pool.drain()
                    self._unpark_all()
            finally:
                self.pool.putconn(conn)
            return
        # Kept for the next checkout when no caller waits on the pool (see _park).
        back = self._park(conn)
        if back is not None:
            self.pool.putconn(back)

    def _unpark_all(self) -> None:
        """Hand every parked connection back to the pool (closing, draining)."""
        for conn in self._parked_out():
            self.pool.putconn(conn)

    def _begin_with_timeout(self, conn: PooledConnection) -> None:
        """PgBouncer mode: open the lease's transaction with the statement timeout.

        Session settings do not survive transaction pooling, so the timeout is set
        per transaction: ``BEGIN; SET LOCAL ...`` in one round trip (simple protocol).
        """
        conn.execute(self._begin_sql.encode())

    def _end_lease(self, conn: PooledConnection, failure: BaseException | None) -> None:
        """PgBouncer mode: commit the lease's transaction, or roll it back after a failure."""
        status = conn.pgconn.transaction_status
        if status == TransactionStatus.INTRANS and failure is None:
            conn.execute(b"COMMIT")
        elif status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                conn.execute(b"ROLLBACK")
            except psycopg.Error:
                conn.close()  # unusable: the pool replaces it

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
            failure: BaseException | None = None
            try:
                with conn.transaction():
                    if self.settings.pgbouncer:
                        conn.execute(
                            f"SET LOCAL statement_timeout = {self._statement_timeout_ms()}"
                        )
                    yield conn
            except psycopg.Error as exc:
                failure = exc
                raise translate(exc) from exc
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self._leave_transaction(token)
                self._checkin(conn, failure)

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
        failure: BaseException | None = None
        try:
            started = time.perf_counter()
            cur = conn.execute("SELECT 1")
            cur.fetchone()
            return (time.perf_counter() - started) * 1000
        except psycopg.Error as exc:
            failure = exc
            raise translate(exc) from exc
        finally:
            if lease is not None:
                self._checkin(lease, failure)

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
            return self._read_budget(conn, services, size)

    @staticmethod
    def _read_budget(conn: psycopg.Connection[Any], services: int, size: int) -> Budget:
        settings = (conn.execute(SETTINGS_SQL)).fetchall()
        in_use = (conn.execute(IN_USE_SQL)).fetchall()
        return budget_from_rows(settings, in_use, expected_services=services, max_size=size)

    def _check_budget(self, conn: PooledConnection) -> None:
        """The start-up budget check, on the pool's first connection (in the background)."""
        try:
            budget = self._read_budget(
                conn, self.settings.expected_services, self.settings.max_connections
            )
        except psycopg.Error as exc:
            self._budget_unchecked(translate(exc))
            return
        self._judge_budget(budget)


class _Lease:
    """``Database.connection()``: a class, not a generator, for the hot path's sake."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: PooledConnection | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        db = self._db
        current = db._current()
        if current is not None:
            return current  # type: ignore[no-any-return]
        conn = self._conn = db._checkout()
        if db.settings.pgbouncer:
            try:
                db._begin_with_timeout(conn)
            except BaseException as exc:
                self._conn = None
                db._checkin(conn, exc)
                if isinstance(exc, psycopg.Error):
                    raise translate(exc) from exc
                raise
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            failure = exc
            try:
                if self._db.settings.pgbouncer:
                    self._db._end_lease(conn, exc)
            except psycopg.Error as end_exc:
                failure = failure or end_exc
                if exc is None:
                    raise translate(end_exc) from end_exc
            finally:
                self._db._checkin(conn, failure)
        if isinstance(exc, psycopg.Error):
            raise translate(exc) from exc
