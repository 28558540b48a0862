"""The connection pool, connection checkout and transactions, for asyncio.

This is the source of ``_database.py`` too: ``tools/async_to_sync.py`` generates
the sync ``Database`` from ``AsyncDatabase``, so the two differ only in awaits.
What does no I/O is shared in ``_database_base.py``.
"""

from __future__ import annotations

# <async>
import asyncio

# </async>
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

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

__all__ = ["AsyncDatabase", "AsyncPooledConnection"]

T = TypeVar("T")


class AsyncPooledConnection(psycopg.AsyncConnection[TupleRow]):
    """A pool connection that remembers when it was last handed back."""

    last_used: float = 0.0
    expires_at: float = math.inf
    poller: Any = None

    @classmethod
    async def connect(  # type: ignore[override]  # psycopg's keywords pass through kwargs
        cls, conninfo: str = "", *, observer: DatabaseBase | None = None, **kwargs: Any
    ) -> Self:
        """Connect; a failed attempt is reported to ``observer`` (the database's breaker)."""
        try:
            return await super().connect(conninfo, **kwargs)
        except Exception as exc:
            if observer is not None:
                observer._connect_failed(exc)
            raise


class AsyncDatabase(DatabaseBase):
    """A PostgreSQL database behind a tuned ``psycopg_pool.AsyncConnectionPool``.

    Single statements run on autocommit connections; ``transaction()`` pins one
    connection to the current task, and every repository call inside uses it.
    Open it with ``async with AsyncDatabase.from_env() as db:``, or
    ``await db.open()`` and later ``await db.close()`` (an async pool is opened
    inside the running event loop; the sync ``Database`` opens in its
    constructor). Neither the constructor nor ``open()`` waits on the network.

    While the server is unreachable (the pool's last connection attempt failed),
    calls fail at once as ``TransientError``; one caller at a time, every second
    at most, probes whether it is back. A connection whose server went away or
    became read-only (a failover) is closed, never handed out again.
    """

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        super().__init__(conninfo, settings)
        self.pool: AsyncConnectionPool[AsyncPooledConnection] = AsyncConnectionPool(
            self._conninfo,
            connection_class=AsyncPooledConnection,
            configure=self._configure,
            **self._pool_options(),
        )
        # <sync>
        # self.open()  # waits on nothing: the pool connects in the background
        # </sync>

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AsyncDatabase:
        """A database from ``DATABASE_URL`` / ``POSTGRES_*``, else an embedded server."""
        settings = Settings.from_env(environ)
        conninfo = conninfo_from_env(environ)
        if conninfo is None:
            from datalayer._embedded import start_embedded

            conninfo = start_embedded(environ)
        return cls(conninfo, settings)

    # -- lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool; connections are made in the background, and never waited for here.

        Idempotent. The connection budget is checked on the pool's first connection.
        A server that is down is not an error here: calls fail as ``TransientError``
        until it is back.
        """
        if self._opened:
            return
        await self.pool.open(wait=False)
        self._opened = True

    async def close(self) -> None:
        """Close the pool and every connection in it."""
        await self._unpark_all()
        await self.pool.close()

    async def __aenter__(self) -> AsyncDatabase:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- connections -------------------------------------------------------------------

    async def _configure(self, conn: AsyncPooledConnection) -> None:
        """Every new pool connection: the server is reachable; the first checks the budget."""
        conn.last_used = time.monotonic()
        conn.expires_at = conn.last_used + self.settings.max_lifetime
        self._connected()
        if not self._budget_checked:
            self._budget_checked = True
            await self._check_budget(conn)

    async def _usable(self, conn: AsyncPooledConnection) -> bool:
        """Is this idle connection alive? A socket poll; a round trip only when long idle."""
        try:
            quick = self._quick_check(conn)
            if quick is not None:
                return quick
            await conn.execute("")
        except (psycopg.Error, OSError, ValueError):
            return False
        return True

    async def _checkout(self, timeout: float | None = None) -> AsyncPooledConnection:
        budget = self.settings.pool_timeout if timeout is None else timeout
        breaker = self._breaker
        if breaker.closed:
            return await self._wait_for_connection(budget)
        admission = breaker.admit(self._probe_timeout(budget))
        if admission is Admission.REJECT:
            # Unreachable, no probe due: an idle connection may still serve, else fail now.
            if not self.stats()["pool_available"]:
                raise self._unreachable()
            return await self._wait_for_connection(min(budget, IDLE_GRAB_S))
        try:
            conn = await self._wait_for_connection(self._probe_timeout(budget))
        except BaseException:
            breaker.probe_done()
            raise
        self._connected()
        return conn

    async def _wait_for_connection(self, budget: float) -> AsyncPooledConnection:
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
        # <async>
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        # </async>
        while True:
            started = time.monotonic()
            conn: AsyncPooledConnection | None = self._unpark()
            if conn is None:
                remaining = deadline - started
                if in_slices is None:
                    # Only a pool that can still grow may be making a connection for
                    # this caller; one at its maximum serves waiters in order, and a
                    # caller that gave up a slice would lose its place in the queue.
                    in_slices = not queued and self._pool_can_grow()
                wait = min(remaining, WAIT_SLICE_S) if in_slices else remaining
                try:
                    conn = await self.pool.getconn(timeout=max(wait, 0.001))
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
                # <async>
                if task is not None and task.cancelling() > cancels:
                    # Python < 3.12's asyncio.wait_for (inside psycopg_pool's wait for a
                    # connection) can swallow a cancellation that lands just as the
                    # connection arrives; the caller then runs a query it cancelled.
                    await self.pool.putconn(conn)
                    raise asyncio.CancelledError
                # </async>
            waited = time.monotonic() - first
            try:
                usable = await self._usable(conn)
            except BaseException:
                await self.pool.putconn(conn)  # interrupted: never lose the connection
                raise
            if usable:
                break
            self._replaced()
            await conn.close()
            await self.pool.putconn(conn)
        self._lent_out(conn, queued=queued, waited=waited)
        return conn

    async def _checkin(
        self, conn: AsyncPooledConnection, failure: BaseException | None = None
    ) -> None:
        """Hand ``conn`` back; closed first if ``failure`` showed its server is gone."""
        self._returned(conn)
        if failure is not None and server_gone(failure):
            self._replaced("server gone")
            try:
                if not conn.closed:
                    await conn.close()
                if getattr(failure.__cause__ or failure, "sqlstate", None) == READ_ONLY_SQLSTATE:
                    # Read-only: every connection to that server is (a failover demoted it).
                    await self.pool.drain()
                    await self._unpark_all()
            finally:
                await self.pool.putconn(conn)
            return
        # Kept for the next checkout when no caller waits on the pool (see _park).
        back = self._park(conn)
        if back is not None:
            await self.pool.putconn(back)

    async def _unpark_all(self) -> None:
        """Hand every parked connection back to the pool (closing, draining)."""
        for conn in self._parked_out():
            await self.pool.putconn(conn)

    async def _begin_with_timeout(self, conn: AsyncPooledConnection) -> None:
        """PgBouncer mode: open the lease's transaction with the statement timeout.

        Session settings do not survive transaction pooling, so the timeout is set
        per transaction: ``BEGIN; SET LOCAL ...`` in one round trip (simple protocol).
        """
        await conn.execute(self._begin_sql.encode())

    async def _end_lease(self, conn: AsyncPooledConnection, failure: BaseException | None) -> None:
        """PgBouncer mode: commit the lease's transaction, or roll it back after a failure."""
        status = conn.pgconn.transaction_status
        if status == TransactionStatus.INTRANS and failure is None:
            await conn.execute(b"COMMIT")
        elif status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                await conn.execute(b"ROLLBACK")
            except psycopg.Error:
                await conn.close()  # unusable: the pool replaces it

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """The current transaction's connection, else a pooled autocommit one.

        psycopg errors raised inside leave as ``datalayer.errors`` kinds.
        """
        return _AsyncLease(self)

    # -- transactions --------------------------------------------------------------------

    def transaction(
        self, *, report: bool = True
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A transaction (a savepoint when nested), yielding its connection.

        It is an errorkit boundary (component ``database``): a failure rolls back
        this level, is reported once and re-raised. ``report=False`` is for plain
        code whose caller reports (the repositories' ``bulk_upsert``): the same
        transaction, no boundary.
        """
        return self._transaction(report=report)

    @asynccontextmanager
    async def _transaction(self, *, report: bool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        outer = self._current()
        operation = "savepoint" if outer is not None else "transaction"
        boundary = captured("database", operation, expected=EXPECTED) if report else nullcontext()
        async with boundary:
            if outer is not None:
                try:
                    async with outer.transaction():
                        yield outer
                except psycopg.Error as exc:
                    raise translate(exc) from exc
                return
            conn = await self._checkout()
            token = self._enter_transaction(conn)
            failure: BaseException | None = None
            try:
                async with conn.transaction():
                    if self.settings.pgbouncer:
                        await conn.execute(
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
                await self._checkin(conn, failure)

    async def run_in_transaction(
        self,
        # <async>
        fn: Callable[[], Awaitable[T]],
        # </async>
        # <sync>
        # fn: Callable[[], T],
        # </sync>
        *,
        retries: int = 3,
    ) -> T:
        """Run ``await fn()`` in a transaction; retry it on serialization failure or deadlock.

        Up to ``retries`` more attempts, with jittered exponential backoff. Nested in
        a running transaction it becomes a savepoint and is not retried (the outer
        transaction is what failed). Reported once, as component ``database``.
        """
        retries = self._check_retries(retries)
        if self.in_transaction():
            async with self.transaction():
                return await fn()
        async with captured("database", "run_in_transaction", expected=EXPECTED):
            attempt = 0
            while True:
                try:
                    async with self._transaction(report=False):
                        return await fn()
                except TransientError as exc:
                    if exc.sqlstate not in RETRYABLE_SQLSTATES or attempt >= retries:
                        raise
                    attempt += 1
                    await asyncio.sleep(self._retry_delay(attempt, retries, exc.sqlstate))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- monitoring ------------------------------------------------------------------

    async def ping(self, *, timeout: float | None = None) -> float:
        """One ``SELECT 1`` round trip through the pool, in milliseconds.

        ``timeout`` bounds the wait for a connection (default: the pool timeout);
        past it the ping raises ``TimeoutError``.
        """
        conn = self._current()
        lease = None
        if conn is None:
            try:
                conn = lease = await self._checkout(timeout)
            except TransientError as exc:
                if timeout is None or not isinstance(exc.__cause__, PoolTimeout):
                    raise
                raise TimeoutError(f"no connection for the ping within {timeout}s") from exc
        failure: BaseException | None = None
        try:
            started = time.perf_counter()
            cur = await conn.execute("SELECT 1")
            await cur.fetchone()
            return (time.perf_counter() - started) * 1000
        except psycopg.Error as exc:
            failure = exc
            raise translate(exc) from exc
        finally:
            if lease is not None:
                await self._checkin(lease, failure)

    async def budget(
        self, *, expected_services: int | None = None, max_size: int | None = None
    ) -> Budget:
        """This service's share of the server's connection slots (see ``datalayer._budget``)."""
        services = (
            self.settings.expected_services if expected_services is None else expected_services
        )
        size = self.settings.max_connections if max_size is None else max_size
        check_plan(services, size)
        async with self.connection() as conn:
            return await self._read_budget(conn, services, size)

    @staticmethod
    async def _read_budget(conn: psycopg.AsyncConnection[Any], services: int, size: int) -> Budget:
        settings = await (await conn.execute(SETTINGS_SQL)).fetchall()
        in_use = await (await conn.execute(IN_USE_SQL)).fetchall()
        return budget_from_rows(settings, in_use, expected_services=services, max_size=size)

    async def _check_budget(self, conn: AsyncPooledConnection) -> None:
        """The start-up budget check, on the pool's first connection (in the background)."""
        try:
            budget = await self._read_budget(
                conn, self.settings.expected_services, self.settings.max_connections
            )
        except psycopg.Error as exc:
            self._budget_unchecked(translate(exc))
            return
        self._judge_budget(budget)


class _AsyncLease:
    """``AsyncDatabase.connection()``: a class, not a generator, for the hot path's sake."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: AsyncDatabase) -> None:
        self._db = db
        self._conn: AsyncPooledConnection | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        db = self._db
        current = db._current()
        if current is not None:
            return current  # type: ignore[no-any-return]
        conn = self._conn = await db._checkout()
        if db.settings.pgbouncer:
            try:
                await db._begin_with_timeout(conn)
            except BaseException as exc:
                self._conn = None
                await db._checkin(conn, exc)
                if isinstance(exc, psycopg.Error):
                    raise translate(exc) from exc
                raise
        return conn

    async def __aexit__(
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
                    await self._db._end_lease(conn, exc)
            except psycopg.Error as end_exc:
                failure = failure or end_exc
                if exc is None:
                    raise translate(end_exc) from end_exc
            finally:
                await self._db._checkin(conn, failure)
        if isinstance(exc, psycopg.Error):
            raise translate(exc) from exc
