"""What ``Database`` and ``AsyncDatabase`` share: everything that does no I/O.

Settings, the connection options, the liveness test of an idle connection, the
pool warnings, the transaction bookkeeping and the figures live here once; the
two classes add only the awaits (``_database_async.py``, and ``_database.py``
generated from it).
"""

from __future__ import annotations

import math
import random
import select
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.pq.abc import PGconn

from datalayer._breaker import Breaker
from datalayer._budget import Budget
from datalayer._config import Settings, check_conninfo
from datalayer.errors import DataLayerError, NotFoundError, TransientError, ValidationError
from errorkit import get_logger

__all__ = ["DatabaseBase", "PooledConnectionState"]

# errorkit's loggers are lazy: they follow setup() and capture_logs() made later.
_log = get_logger("datalayer.database")

_IDLE = TransactionStatus.IDLE

# Caller-side outcomes: a transaction boundary logs them as rejected, never as failures.
EXPECTED = (ValidationError, NotFoundError)
# A checkout slower than this may have queued for a connection.
_WAIT_NOTICE_S = 0.001
# At most one pool warning of each kind per this many seconds.
_WARN_INTERVAL_S = 60.0
_RETRY_BASE_DELAY_S = 0.05
# A caller waiting for a *new* connection (not queued behind busy ones) looks at the
# breaker this often, so a failed connection attempt fails it at once.
WAIT_SLICE_S = 0.05
# With the breaker open and no probe due, a caller still takes an idle connection if
# the pool has one, waiting at most this long for it.
IDLE_GRAB_S = 0.005
# psycopg_pool's reconnect_timeout: how long the pool itself retries a failed
# connection (with its backoff) before it gives up. Short on purpose: while an
# attempt is pending the pool starts no new one, and its backoff doubles up to
# minutes, so a long retry would hold recovery back after the server returns.
# Past it, the breaker's probe (one caller every second at most, while there is
# demand) makes the next attempt at once.
RECONNECT_TIMEOUT_S = 0.5
# The server is gone for this connection: read-only now (a demoted primary after a
# failover, a standby), shutting down, crashed, or not accepting connections yet.
READ_ONLY_SQLSTATE = "25006"
_GONE_SQLSTATES = frozenset({READ_ONLY_SQLSTATE, "57P01", "57P02", "57P03"})

# The transaction connection of each database in the current context (thread or
# task). One variable for every database, keyed by database: a transaction on
# one never lends its connection to another.
_TRANSACTIONS: ContextVar[Mapping[DatabaseBase, Any]] = ContextVar(
    "datalayer_transactions", default=MappingProxyType({})
)


class PooledConnectionState(Protocol):
    """What the pool's connection classes carry beside a psycopg connection."""

    last_used: float
    poller: Any
    pgconn: PGconn


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

    def held_back(self) -> bool:
        """Within the interval: count one line held back and say so, without building it.

        Under contention every checkout meets a warning condition; this keeps the
        cost of the held-back ones to a clock read and a lock.
        """
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return True
        return False


def socket_readable(conn: PooledConnectionState) -> bool:
    """Has the server spoken on this idle connection? Never waits.

    An idle connection has nothing to read; data or EOF means the server spoke
    first (terminate message, shutdown) or the peer closed the socket.
    ``select.poll`` where the platform has it (one registration per connection),
    else a zero-timeout ``select.select`` (Windows).
    """
    poller = conn.poller
    if poller is None:
        if not hasattr(select, "poll"):
            readable, _, errored = select.select([conn.pgconn.socket], [], [conn.pgconn.socket], 0)
            return bool(readable or errored)
        poller = conn.poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def server_gone(exc: BaseException) -> bool:
    """Did ``exc`` show that its connection's server is gone (for writes, or at all)?

    Such a connection is closed, never handed out again: after a failover the old
    primary answers 25006 (read-only) or 57P01 (admin shutdown), and a new
    connection (``target_session_attrs=read-write``) finds the new primary.
    """
    if isinstance(exc, DataLayerError) and isinstance(exc.__cause__, psycopg.Error):
        exc = exc.__cause__  # already translated, by a repository call inside a transaction
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        # No SQLSTATE: the connection itself was lost mid-query.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state in _GONE_SQLSTATES or state.startswith("08")


class DatabaseBase:
    """The parts of a database that do no I/O (see ``Database`` and ``AsyncDatabase``)."""

    def __init__(self, conninfo: str, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        # Several hosts get target_session_attrs=read-write, as from the environment.
        self._conninfo = check_conninfo(conninfo)
        self._breaker = Breaker()
        self._budget_checked = False
        # Connections lent out right now; set.add/discard need no lock.
        self._lent: set[Any] = set()
        # Connections kept out of the pool between two calls (see _park), newest last,
        # and how many callers are waiting on the pool itself right now.
        self._parked: list[Any] = []
        self._parking = threading.Lock()
        self._pool_waiters = 0
        self._warn_usage = _RateLimitedWarning("pool_usage_high")
        self._warn_wait = _RateLimitedWarning("pool_callers_waiting")
        self._opened = False

    def _connection_kwargs(self) -> dict[str, Any]:
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
            own = conninfo_to_dict(self._conninfo).get("options") or ""
            timeout = f"-c statement_timeout={self._statement_timeout_ms()}"
            kwargs["options"] = f"{own} {timeout}".strip()
        return kwargs

    def _pool_options(self) -> dict[str, Any]:
        """Keyword arguments for the psycopg_pool pool, sync or async alike."""
        s = self.settings
        return {
            # The pool's connection class reports each attempt's outcome to ``observer``.
            "kwargs": {**self._connection_kwargs(), "observer": self},
            "min_size": s.min_connections,
            "max_size": s.max_connections,
            "timeout": s.pool_timeout,
            "max_lifetime": s.max_lifetime,
            "max_idle": s.max_idle,
            "name": s.service_name,
            "open": False,
            "reconnect_timeout": RECONNECT_TIMEOUT_S,
        }

    def _statement_timeout_ms(self) -> int:
        return max(1, round(self.settings.statement_timeout * 1000))

    @property
    def _begin_sql(self) -> str:
        return f"BEGIN; SET LOCAL statement_timeout = {self._statement_timeout_ms()}"

    # -- transactions ------------------------------------------------------------

    def in_transaction(self) -> bool:
        """True inside ``transaction()`` / ``run_in_transaction`` in this context."""
        return self in _TRANSACTIONS.get()

    def _current(self) -> Any:
        """This context's transaction connection on this database, or None."""
        return _TRANSACTIONS.get().get(self)

    def _enter_transaction(self, conn: Any) -> Any:
        current = _TRANSACTIONS.get()
        return _TRANSACTIONS.set({**current, self: conn})

    @staticmethod
    def _leave_transaction(token: Any) -> None:
        _TRANSACTIONS.reset(token)

    @staticmethod
    def _check_retries(retries: object) -> int:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(f"retries must be a non-negative integer, got {retries!r}")
        return retries

    @staticmethod
    def _retry_delay(attempt: int, retries: int, sqlstate: str | None) -> float:
        """The jittered exponential backoff before retry ``attempt``; logged."""
        delay: float = _RETRY_BASE_DELAY_S * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.5)
        _log.warning(
            "transaction_retry",
            attempt=attempt,
            retries=retries,
            sqlstate=sqlstate,
            delay_ms=round(delay * 1000),
        )
        return delay

    # -- checkout bookkeeping ------------------------------------------------------

    def _not_open(self, exc: BaseException) -> DataLayerError:
        if not self._opened:
            name = type(self).__name__
            return DataLayerError(
                f"this {name} is not open yet: use `async with {name}.from_env() as db`"
                " or `await db.open()`"
                if name.startswith("Async")
                else f"this {name} is not open yet: call db.open()"
            )
        return DataLayerError(f"this {type(self).__name__} is closed")

    def _quick_check(self, conn: Any) -> bool | None:
        """True: alive, no round trip needed. False: dead. None: idle long, needs a round trip."""
        if conn.closed:
            return False
        if time.monotonic() - conn.last_used > self.settings.check_idle_after:
            return None
        return not socket_readable(conn)

    def _lent_out(self, conn: Any, *, queued: bool, waited: float) -> None:
        """Book a connection as lent out; warn about waiting callers and high usage."""
        self._lent.add(conn)
        if (queued and not self._warn_wait.held_back()) or (not queued and waited > _WAIT_NOTICE_S):
            stats = self.stats()
            # Waiting while the pool opened its first connections is not contention;
            # others still queued, or a pool at its maximum, is.
            if queued or stats["requests_waiting"] or stats["pool_size"] >= stats["pool_max"]:
                self._warn_wait(waited_ms=round(waited * 1000, 3), **stats)
        if (
            len(self._lent) / self.settings.max_connections >= self.settings.pool_usage_warn
            and not self._warn_usage.held_back()
        ):
            stats = self.stats()
            if stats["usage"] >= self.settings.pool_usage_warn:
                self._warn_usage(**stats)

    def _pool_can_grow(self) -> bool:
        """Has the pool fewer connections than its maximum (so it may open one now)?"""
        stats = self.pool.get_stats()
        return bool(stats.get("pool_size", 0) < stats.get("pool_max", 1))

    def _queued(self) -> bool:
        # Every connection lent out: this caller queues for one to come back.
        return len(self._lent) >= self.settings.max_connections

    def _timed_out(self, started: float) -> None:
        self._warn_wait(waited_ms=round((time.monotonic() - started) * 1000), **self.stats())

    # -- the parking stack -----------------------------------------------------------
    #
    # Measured (benchmarks/async_vs_raw.py): psycopg_pool's checkout and return (a
    # lock, a condition, stats, a reset check) cost about 15 us of CPU per call, a
    # fifth of a one-row read. A connection handed back while no caller waits on the
    # pool is parked here instead and the next checkout takes it without the pool;
    # with any caller waiting it goes to the pool, which serves waiters in order. The
    # pool still owns every connection: parked ones count as available in stats(),
    # past max_lifetime or max_idle they go back to it, and close() returns them.

    def _unpark(self) -> Any:
        """The newest parked connection; else None, and the caller counts as a pool waiter
        until ``_pool_wait_done()``."""
        with self._parking:
            if self._parked:
                return self._parked.pop()
            self._pool_waiters += 1
            return None

    def _pool_wait_done(self) -> None:
        with self._parking:
            self._pool_waiters -= 1

    def _park(self, conn: Any) -> Any:
        """Park an idle connection; return the one the pool should get back, or None."""
        now = time.monotonic()
        if conn.closed or conn.pgconn.transaction_status != _IDLE or now >= conn.expires_at:
            return conn
        with self._parking:
            if self._pool_waiters:
                return conn
            self._parked.append(conn)
            oldest = self._parked[0]
            if now - oldest.last_used > self.settings.max_idle:
                # Idle past max_idle: the pool decides whether it stays (min_size).
                return self._parked.pop(0)
        return None

    def _parked_out(self) -> list[Any]:
        with self._parking:
            parked, self._parked = self._parked, []
        return parked

    def _returned(self, conn: PooledConnectionState) -> None:
        self._lent.discard(conn)
        conn.last_used = time.monotonic()

    @staticmethod
    def _replaced(reason: str = "dead on checkout") -> None:
        _log.info("pool_connection_replaced", reason=reason)

    # -- reachability (the breaker) ---------------------------------------------------

    def _connect_failed(self, exc: BaseException) -> None:
        """The pool failed to make a connection: the server is unreachable for now."""
        state = getattr(exc, "sqlstate", None)
        if isinstance(state, str) and state.startswith("53"):
            return  # too many connections: the server is up, and busy connections still work
        if self._breaker.failed(type(exc).__name__):
            _log.warning(
                "database_unreachable",
                error_type=type(exc).__name__,
                sqlstate=state,
                retry_every_s=self._breaker.retry_interval,
            )

    def _connected(self) -> None:
        """The pool made a connection (or a probe got a working one): reachable again."""
        if self._breaker.closed:
            return
        outage = self._breaker.succeeded()
        if outage is not None:
            _log.info("database_reachable", unreachable_ms=round(outage * 1000))

    def _unreachable(self) -> TransientError:
        return TransientError(
            "database unreachable: the last connection attempt failed"
            f" ({self._breaker.last_error}); calls fail at once until a probe connects"
        )

    def _probe_timeout(self, budget: float) -> float:
        # A probe waits as long as a connection attempt may take, within its own budget.
        return min(budget, self.settings.connect_timeout + 1.0)

    # -- monitoring ------------------------------------------------------------------

    pool: Any

    def stats(self) -> dict[str, Any]:
        """The pool's figures, with ``in_use`` and ``usage`` (in-use / max size)."""
        stats: dict[str, Any] = dict(self.pool.get_stats())
        stats["pool_available"] += len(self._parked)
        # The pool counts a caller that gave up until a connection comes back to it
        # (parked ones do not); the callers inside its getconn now bound that.
        stats["requests_waiting"] = min(stats.get("requests_waiting", 0), self._pool_waiters)
        in_use = stats["pool_size"] - stats["pool_available"]
        stats["in_use"] = in_use
        stats["usage"] = in_use / stats["pool_max"]
        return stats

    def _judge_budget(self, budget: Budget) -> None:
        if budget.verdict == "over":
            _log.warning("pool_over_budget", **budget.as_dict())

    @staticmethod
    def _budget_unchecked(exc: DataLayerError) -> None:
        # A server that is down at start is an outage, not a bad setting: the service
        # comes up, the pool keeps reconnecting, and calls fail as TransientError
        # (reads degrade) until the server is back.
        _log.warning("pool_budget_unchecked", error_type=type(exc).__name__, error_kind=exc.kind)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.settings.service_name!r}"
            f" max={self.settings.max_connections}>"
        )
