"""The connection pool, connection checkout and transactions, for asyncio.

This is the source of ``_database.py`` too: ``tools/async_to_sync.py`` generates
the sync ``Database`` from ``AsyncDatabase``, so the two differ only in awaits.
What does no I/O is shared in ``_database_base.py``.
"""

from __future__ import annotations

# <async>
import asyncio

# </async>
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from datalayer._budget import IN_USE_SQL, SETTINGS_SQL, Budget, budget_from_rows, check_plan
from datalayer._config import Settings, conninfo_from_env
from datalayer._database_base import EXPECTED, DatabaseBase
from datalayer.errors import RETRYABLE_SQLSTATES, DataLayerError, TransientError, translate
from errorkit import captured

__all__ = ["AsyncDatabase", "AsyncPooledConnection"]

T = TypeVar("T")


class AsyncPooledConnection(psycopg.AsyncConnection[TupleRow]):
    """A pool connection that remembers when it was last handed back."""

    last_used: float = 0.0
    poller: Any = None


class AsyncDatabase(DatabaseBase):
    """A PostgreSQL database behind a tuned ``psycopg_pool.AsyncConnectionPool``.

    Single statements run on autocommit connections; ``transaction()`` pins one
    connection to the current task, and every repository call inside uses it.
    Open it inside the running event loop: ``async with AsyncDatabase.from_env()
    as db:``, or ``await db.open()`` and later ``await db.close()``.
    """

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        super().__init__(conninfo, settings)
        self.pool: AsyncConnectionPool[AsyncPooledConnection] = AsyncConnectionPool(
            conninfo,
            connection_class=AsyncPooledConnection,
            configure=self._configure,
            **self._pool_options(),
        )
        # <sync>
        # self.open()
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
        """Open the pool (connections are made in the background) and check the budget.

        Idempotent. A server that is down is not an error here: calls fail as
        ``TransientError`` until it is back.
        """
        if self._opened:
            return
        await self.pool.open(wait=False)
        self._opened = True
        try:
            await self._check_budget()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the pool and every connection in it."""
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

    @staticmethod
    async def _configure(conn: AsyncPooledConnection) -> None:
        conn.last_used = time.monotonic()

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
        deadline = time.monotonic() + budget
        queued = self._queued()
        # <async>
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        # </async>
        while True:
            started = time.monotonic()
            try:
                conn = await self.pool.getconn(timeout=max(deadline - started, 0.001))
            except PoolClosed as exc:
                raise self._not_open(exc) from exc
            except PoolTimeout as exc:
                self._timed_out(started)
                raise translate(exc) from exc
            # <async>
            if task is not None and task.cancelling() > cancels:
                # Python < 3.12's asyncio.wait_for (inside psycopg_pool's wait for a
                # connection) can swallow a cancellation that lands just as the
                # connection arrives; the caller then runs a query it cancelled.
                await self.pool.putconn(conn)
                raise asyncio.CancelledError
            # </async>
            waited = time.monotonic() - started
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

    async def _checkin(self, conn: AsyncPooledConnection) -> None:
        self._returned(conn)
        await self.pool.putconn(conn)

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
            try:
                async with conn.transaction():
                    if self.settings.pgbouncer:
                        await conn.execute(
                            f"SET LOCAL statement_timeout = {self._statement_timeout_ms()}"
                        )
                    yield conn
            except psycopg.Error as exc:
                raise translate(exc) from exc
            finally:
                self._leave_transaction(token)
                await self._checkin(conn)

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
        try:
            started = time.perf_counter()
            cur = await conn.execute("SELECT 1")
            await cur.fetchone()
            return (time.perf_counter() - started) * 1000
        except psycopg.Error as exc:
            raise translate(exc) from exc
        finally:
            if lease is not None:
                await self._checkin(lease)

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
            settings = await (await conn.execute(SETTINGS_SQL)).fetchall()
            in_use = await (await conn.execute(IN_USE_SQL)).fetchall()
        return budget_from_rows(settings, in_use, expected_services=services, max_size=size)

    async def _check_budget(self) -> None:
        try:
            budget = await self.budget()
        except DataLayerError as exc:
            self._budget_unchecked(exc)
            return
        self._judge_budget(budget)


class _AsyncLease:
    """``AsyncDatabase.connection()``: a class, not a generator, for the hot path's sake."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: AsyncDatabase) -> None:
        self._db = db
        self._conn: AsyncPooledConnection | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        current = self._db._current()
        if current is not None:
            return current  # type: ignore[no-any-return]
        self._conn = await self._db._checkout()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._db._checkin(conn)
        if isinstance(exc, psycopg.Error):
            raise translate(exc) from exc
