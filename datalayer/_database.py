"""The connection pool, connection checkout and transactions."""

from __future__ import annotations

import math
import random
import select
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from datalayer._budget import Budget, check_budget
from datalayer._config import Settings, conninfo_from_env
from datalayer.errors import (
    RETRYABLE_SQLSTATES,
    DataLayerError,
    NotFoundError,
    TransientError,
    ValidationError,
    translate,
)
from errorkit import captured, get_logger

__all__ = ["Database"]

T = TypeVar("T")


# errorkit's loggers are lazy: they follow setup() and capture_logs() made later.
_log = get_logger("datalayer.database")


# Caller-side outcomes: a transaction boundary logs them as rejected, never as failures.
_EXPECTED = (ValidationError, NotFoundError)
# A checkout slower than this may have queued for a connection.
_WAIT_NOTICE_S = 0.001
# At most one pool warning of each kind per this many seconds.
_WARN_INTERVAL_S = 60.0
_RETRY_BASE_DELAY_S = 0.05


class PooledConnection(psycopg.Connection[TupleRow]):
    """A pool connection that remembers when it was last handed back."""

    last_used: float = 0.0
    poller: select.poll | None = None


class _RateLimitedWarning:
    """One warning line per interval; the lines held back are counted into the next."""

    def __init__(self, event: str, interval: float = _WARN_INTERVAL_S) -> None:
        self.event = event
        self.interval = interval
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def __call__(self, **fields: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return
            self._next = now + self.interval
            suppressed, self._suppressed = self._suppressed, 0
        _log.warning(self.event, suppressed=suppressed, **fields)


def _socket_readable(conn: PooledConnection) -> bool:
    # An idle connection has nothing to read; data or EOF means the server spoke
    # first (terminate message, shutdown) or the peer closed the socket.
    poller = conn.poller
    if poller is None:
        poller = conn.poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class Database:
    """A PostgreSQL database behind a tuned ``psycopg_pool.ConnectionPool``.

    Single statements run on autocommit connections; ``transaction()`` pins one
    connection to the current context, and every repository call inside uses it.
    """

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        s = self.settings
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": s.service_name,
            "connect_timeout": max(1, math.ceil(s.connect_timeout)),
        }
        if s.pgbouncer:
            # Transaction pooling: no prepared statements, no session settings.
            kwargs["prepare_threshold"] = None
        else:
            # Added to the conninfo's own options (search_path and the like), not over them.
            own = conninfo_to_dict(conninfo).get("options") or ""
            timeout = f"-c statement_timeout={self._statement_timeout_ms()}"
            kwargs["options"] = f"{own} {timeout}".strip()
        self._tx: ContextVar[psycopg.Connection[Any] | None] = ContextVar(
            f"datalayer_tx_{id(self)}", default=None
        )
        # Connections lent out right now; set.add/discard need no lock.
        self._lent: set[PooledConnection] = set()
        self._warn_usage = _RateLimitedWarning("pool_usage_high")
        self._warn_wait = _RateLimitedWarning("pool_callers_waiting")
        self.pool: ConnectionPool[PooledConnection] = ConnectionPool(
            conninfo,
            connection_class=PooledConnection,
            kwargs=kwargs,
            min_size=s.min_connections,
            max_size=s.max_connections,
            timeout=s.pool_timeout,
            max_lifetime=s.max_lifetime,
            max_idle=s.max_idle,
            name=s.service_name,
            configure=self._configure,
            open=False,
        )
        self.pool.open(wait=False)
        try:
            self._check_budget()
        except BaseException:
            self.pool.close()
            raise

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Database:
        """A Database from ``DATABASE_URL`` / ``POSTGRES_*``, else an embedded server."""
        settings = Settings.from_env(environ)
        conninfo = conninfo_from_env(environ)
        if conninfo is None:
            from datalayer._embedded import start_embedded

            conninfo = start_embedded(environ)
        return cls(conninfo, settings)

    # -- connections -------------------------------------------------------

    @staticmethod
    def _configure(conn: PooledConnection) -> None:
        conn.last_used = time.monotonic()

    def _statement_timeout_ms(self) -> int:
        return max(1, round(self.settings.statement_timeout * 1000))

    def _usable(self, conn: PooledConnection) -> bool:
        """Is this idle connection alive? A socket poll; a round trip only when long idle."""
        try:
            if conn.closed:
                return False
            if (
                time.monotonic() - conn.last_used <= self.settings.check_idle_after
                and not _socket_readable(conn)
            ):
                return True
            conn.execute("")
        except (psycopg.Error, OSError, ValueError):
            return False
        return True

    def _checkout(self) -> PooledConnection:
        deadline = time.monotonic() + self.settings.pool_timeout
        # Every connection lent out: this caller queues for one to come back.
        queued = len(self._lent) >= self.settings.max_connections
        while True:
            started = time.monotonic()
            try:
                conn = self.pool.getconn(timeout=max(deadline - started, 0.001))
            except PoolClosed as exc:
                raise DataLayerError("this Database is closed") from exc
            except PoolTimeout as exc:
                self._warn_wait(
                    waited_ms=round((time.monotonic() - started) * 1000), **self.stats()
                )
                raise translate(exc) from exc
            waited = time.monotonic() - started
            try:
                usable = self._usable(conn)
            except BaseException:
                self.pool.putconn(conn)  # interrupted: never lose the connection
                raise
            if usable:
                break
            _log.info("pool_connection_replaced", reason="dead on checkout")
            conn.close()
            self.pool.putconn(conn)
        self._lent.add(conn)
        lent = len(self._lent)
        if queued or waited > _WAIT_NOTICE_S:
            stats = self.stats()
            # Waiting while the pool opened its first connections is not contention;
            # others still queued, or a pool at its maximum, is.
            if queued or stats["requests_waiting"] or stats["pool_size"] >= stats["pool_max"]:
                self._warn_wait(waited_ms=round(waited * 1000, 3), **stats)
        if lent / self.settings.max_connections >= self.settings.pool_usage_warn:
            stats = self.stats()
            if stats["usage"] >= self.settings.pool_usage_warn:
                self._warn_usage(**stats)
        return conn

    def _checkin(self, conn: PooledConnection) -> None:
        self._lent.discard(conn)
        conn.last_used = time.monotonic()
        self.pool.putconn(conn)

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """The current transaction's connection, else a pooled autocommit one.

        psycopg errors raised inside leave as ``datalayer.errors`` kinds.
        """
        return _Lease(self)

    def in_transaction(self) -> bool:
        """True inside ``transaction()`` / ``run_in_transaction`` in this context."""
        return self._tx.get() is not None

    # -- transactions --------------------------------------------------------

    def transaction(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A transaction (a savepoint when nested), yielding its connection.

        It is an errorkit boundary (component ``database``): a failure rolls back
        this level, is reported once and re-raised.
        """
        return self._transaction(report=True)

    @contextmanager
    def _transaction(self, *, report: bool) -> Iterator[psycopg.Connection[Any]]:
        outer = self._tx.get()
        operation = "savepoint" if outer is not None else "transaction"
        boundary = captured("database", operation, expected=_EXPECTED) if report else nullcontext()
        with boundary:
            if outer is not None:
                try:
                    with outer.transaction():
                        yield outer
                except psycopg.Error as exc:
                    raise translate(exc) from exc
                return
            conn = self._checkout()
            token = self._tx.set(conn)
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
                self._tx.reset(token)
                self._checkin(conn)

    def run_in_transaction(self, fn: Callable[[], T], *, retries: int = 3) -> T:
        """Run ``fn()`` in a transaction; retry it on serialization failure or deadlock.

        Up to ``retries`` more attempts, with jittered exponential backoff. Nested in
        a running transaction it becomes a savepoint and is not retried (the outer
        transaction is what failed). Reported once, as component ``database``.
        """
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(f"retries must be a non-negative integer, got {retries!r}")
        if self.in_transaction():
            with self.transaction():
                return fn()
        with captured("database", "run_in_transaction", expected=_EXPECTED):
            attempt = 0
            while True:
                try:
                    with self._transaction(report=False):
                        return fn()
                except TransientError as exc:
                    if exc.sqlstate not in RETRYABLE_SQLSTATES or attempt >= retries:
                        raise
                    attempt += 1
                    delay = _RETRY_BASE_DELAY_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                    _log.warning(
                        "transaction_retry",
                        attempt=attempt,
                        retries=retries,
                        sqlstate=exc.sqlstate,
                        delay_ms=round(delay * 1000),
                    )
                    time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- monitoring --------------------------------------------------------

    def ping(self) -> float:
        """One ``SELECT 1`` round trip through the pool, in milliseconds."""
        with self.connection() as conn:
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            return (time.perf_counter() - started) * 1000

    def stats(self) -> dict[str, Any]:
        """The pool's figures, with ``in_use`` and ``usage`` (in-use / max size)."""
        stats: dict[str, Any] = dict(self.pool.get_stats())
        in_use = stats["pool_size"] - stats["pool_available"]
        stats["in_use"] = in_use
        stats["usage"] = in_use / stats["pool_max"]
        return stats

    def budget(self) -> Budget:
        """This service's share of the server's connection slots (see ``datalayer._budget``)."""
        return check_budget(
            self,
            expected_services=self.settings.expected_services,
            max_size=self.settings.max_connections,
        )

    def _check_budget(self) -> None:
        # A server that is down at start is an outage, not a bad setting: the service
        # comes up, the pool keeps reconnecting, and calls fail as TransientError
        # (reads degrade) until the server is back.
        try:
            budget = self.budget()
        except DataLayerError as exc:
            _log.warning(
                "pool_budget_unchecked", error_type=type(exc).__name__, error_kind=exc.kind
            )
            return
        if budget.verdict == "over":
            _log.warning("pool_over_budget", **budget.as_dict())

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self.pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Database {self.settings.service_name!r} max={self.settings.max_connections}>"


class _Lease:
    """``Database.connection()``: a class, not a generator, for the hot path's sake."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: PooledConnection | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        current = self._db._tx.get()
        if current is not None:
            return current
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
