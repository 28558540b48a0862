"""Prometheus metrics of the data layer: facade call durations, pool figures, WhatsApp keys.

- ``datalayer_operation_duration_seconds{operation, outcome}``: a histogram fed
  by the facade's boundaries through errorkit's ``observer`` option (the
  boundary already times the call; :func:`operation_observer` only files it);
- ``datalayer_pool_*``: read from ``stats()`` of each watched database when
  Prometheus scrapes (:class:`PoolCollector`), never pushed per call;
- ``datalayer_whatsapp_keys{state}``: key counts from a callable, cached for
  :data:`WHATSAPP_KEYS_REFRESH_S` (:class:`WhatsAppKeysCollector`).

Scrapes are synchronous (prometheus_client collectors are), so the WhatsApp
collector takes a callable returning ``(total, expired)``: for a sync
``Database`` one that runs the count (:func:`database_key_counts`); an async
database hands it one that returns figures its own health path refreshed.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from errorkit import captured
from errorkit import metrics as errorkit_metrics

__all__ = [
    "DURATION",
    "WHATSAPP_KEYS_REFRESH_S",
    "KeyCounts",
    "PoolCollector",
    "WhatsAppKeysCollector",
    "database_key_counts",
    "operation_observer",
    "pools",
    "watch_pool",
    "watch_whatsapp_keys",
    "whatsapp_keys",
]

#: Seconds a WhatsApp key count is reused (the count scans the table).
WHATSAPP_KEYS_REFRESH_S = 30.0

# Facade calls range from a fraction of a millisecond (a warm indexed read) to the
# statement timeout (60 s by default): the buckets span both.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

DURATION = Histogram(
    "datalayer_operation_duration_seconds",
    "Duration of data-layer facade calls, by operation and outcome (ok, failed, rejected).",
    ["operation", "outcome"],
    buckets=DURATION_BUCKETS,
)

#: ``() -> (total, expired)``, or None when the figures are unknown.
KeyCounts = Callable[[], "tuple[int, int] | None"]


class _HasStats(Protocol):
    def stats(self) -> Any: ...


def operation_observer(operation: str) -> Callable[[str, float], None]:
    """An errorkit ``observer`` filing each call of ``operation`` in :data:`DURATION`."""
    children: dict[str, Any] = {}
    enabled = errorkit_metrics.enabled

    def observe(outcome: str, seconds: float) -> None:
        if not enabled():
            return
        child = children.get(outcome)
        if child is None:
            child = children[outcome] = DURATION.labels(operation, outcome)
        child.observe(seconds)

    return observe


def _closed(source: Any) -> bool:
    """Is ``source`` (a database, or its pool) known to be closed?"""
    closed = getattr(source, "closed", None)
    if closed is None:
        closed = getattr(getattr(source, "pool", None), "closed", False)
    return bool(closed)


class PoolCollector:
    """The ``datalayer_pool_*`` figures, read from ``stats()`` at scrape time.

    Watches any object whose ``stats()`` returns psycopg_pool's ``get_stats()``
    keys (``Database``, an async database alike), through a weak reference: a
    database closed or gone is left out. Several watched pools are summed.
    """

    def __init__(self) -> None:
        self._sources: list[weakref.ref[Any]] = []
        self._lock = threading.Lock()

    def watch(self, source: _HasStats) -> None:
        """Include ``source``'s pool from the next scrape on (once, however often called)."""
        with self._lock:
            self._sources = [ref for ref in self._sources if ref() is not None]
            if not any(ref() is source for ref in self._sources):
                self._sources.append(weakref.ref(source))

    def _stats(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            sources = [ref() for ref in self._sources]
        for source in sources:
            if source is None or _closed(source):
                continue
            try:
                yield dict(source.stats())
            except Exception:  # figures are a courtesy: one bad source costs its own only
                continue

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        if not errorkit_metrics.enabled():
            return
        totals = {"idle": 0, "in_use": 0, "max": 0, "waiting": 0, "timeouts": 0}
        found = False
        for stats in self._stats():
            found = True
            size, available = int(stats.get("pool_size", 0)), int(stats.get("pool_available", 0))
            totals["idle"] += available
            totals["in_use"] += max(size - available, 0)
            totals["max"] += int(stats.get("pool_max", 0))
            totals["waiting"] += int(stats.get("requests_waiting", 0))
            # psycopg_pool counts a request that timed out (or found the queue full)
            # as a request error; the key is absent until the first one.
            totals["timeouts"] += int(stats.get("requests_errors", 0))
        if found:
            yield from self._families(totals)

    @staticmethod
    def _families(totals: dict[str, int] | None) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "datalayer_pool_connections",
            "Connections of the pool by state: idle (ready in the pool) or in_use (lent out).",
            labels=["state"],
        )
        maximum = GaugeMetricFamily(
            "datalayer_pool_max_connections", "Most connections the pool may open."
        )
        waiting = GaugeMetricFamily(
            "datalayer_pool_waiting", "Callers waiting for a connection right now."
        )
        timeouts = CounterMetricFamily(
            "datalayer_pool_timeouts",
            "Requests for a connection that gave up (pool timeout) since the pool opened.",
        )
        if totals is not None:
            connections.add_metric(["idle"], totals["idle"])
            connections.add_metric(["in_use"], totals["in_use"])
            maximum.add_metric([], totals["max"])
            waiting.add_metric([], totals["waiting"])
            timeouts.add_metric([], totals["timeouts"])
        yield from (connections, maximum, waiting, timeouts)


class WhatsAppKeysCollector:
    """``datalayer_whatsapp_keys{state}`` (``total``, ``expired``) from a :data:`KeyCounts`.

    The callable runs at most once per ``refresh_s`` seconds, whatever the scrape
    rate; its answer (figures, or None when they could not be read) is reused in
    between. With no callable, or no figures, the metric has no samples.
    """

    def __init__(
        self,
        counts: KeyCounts | None = None,
        *,
        refresh_s: float = WHATSAPP_KEYS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counts = counts
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[int, int] | None] | None = None

    def use(self, counts: KeyCounts | None) -> None:
        """Read the figures from ``counts`` from now on (the cache is dropped)."""
        with self._lock:
            self._counts = counts
            self._cached = None

    def figures(self) -> tuple[int, int] | None:
        """``(total, expired)``: cached, or read now if the cache is older than ``refresh_s``."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._refresh_s:
                return self._cached[1]
            counts = self._counts
            figures: tuple[int, int] | None = None
            if counts is not None:
                try:
                    figures = counts()
                except Exception:  # the callable reports its own failures
                    figures = None
            self._cached = (now, figures)
            return figures

    def describe(self) -> Iterator[Metric]:
        yield self._family(None)

    def collect(self) -> Iterator[Metric]:
        if errorkit_metrics.enabled():
            yield self._family(self.figures())

    @staticmethod
    def _family(figures: tuple[int, int] | None) -> Metric:
        family = GaugeMetricFamily(
            "datalayer_whatsapp_keys",
            "WhatsApp signal keys stored: total, and expired (awaiting cleanup).",
            labels=["state"],
        )
        if figures is not None:
            family.add_metric(["total"], figures[0])
            family.add_metric(["expired"], figures[1])
        return family


_KEY_COUNTS_SQL = "SELECT count(*), count(*) FILTER (WHERE expires_at <= now()) FROM whatsapp_keys"


def database_key_counts(db: Any) -> KeyCounts:
    """A :data:`KeyCounts` counting the keys of a sync ``Database`` (held weakly).

    A failed count is reported once through errorkit (component ``whatsapp``,
    operation ``key_counts``) and gives None.
    """
    ref = weakref.ref(db)

    def counts() -> tuple[int, int] | None:
        target = ref()
        if target is None or _closed(target):
            return None
        figures: tuple[int, int] | None = None
        with captured("whatsapp", "key_counts", reraise=False), target.connection() as conn:
            row = conn.execute(_KEY_COUNTS_SQL).fetchone()
            figures = (int(row[0]), int(row[1]))
        return figures

    return counts


class AsyncKeyCounts:
    """A :data:`KeyCounts` for an ``AsyncDatabase``: the scrape (sync) reads figures
    that ``await refresh()`` counted, at most once per ``refresh_s`` seconds.

    The health API's async ``/metrics`` endpoint refreshes before each scrape. A
    failed count is reported once through errorkit (component ``whatsapp``,
    operation ``key_counts``) and keeps the last figures.
    """

    def __init__(
        self,
        db: Any,
        *,
        refresh_s: float = WHATSAPP_KEYS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = weakref.ref(db)
        self._refresh_s = refresh_s
        self._clock = clock
        self._counted_at: float | None = None
        self.figures: tuple[int, int] | None = None

    def __call__(self) -> tuple[int, int] | None:
        return self.figures

    async def refresh(self) -> None:
        """Count the keys again unless the last count is recent."""
        now = self._clock()
        if self._counted_at is not None and now - self._counted_at < self._refresh_s:
            return
        self._counted_at = now
        db = self._db()
        if db is None or _closed(db):
            self.figures = None
            return
        async with captured("whatsapp", "key_counts", reraise=False), db.connection() as conn:
            row = await (await conn.execute(_KEY_COUNTS_SQL)).fetchone()
            self.figures = (int(row[0]), int(row[1]))


# The process's collectors, registered with errorkit's exposition on first use.
pools = PoolCollector()
whatsapp_keys = WhatsAppKeysCollector()


def watch_pool(db: _HasStats) -> None:
    """Report ``db``'s pool figures (``datalayer_pool_*``) in this process's scrapes."""
    pools.watch(db)
    errorkit_metrics.register_collector(pools)


def watch_whatsapp_keys(source: Any) -> None:
    """Report ``datalayer_whatsapp_keys`` from ``source``: a sync ``Database``, or a
    :data:`KeyCounts` callable (an async database passes one returning cached figures).

    One source per process: the last one given wins.
    """
    whatsapp_keys.use(source if callable(source) else database_key_counts(source))
    errorkit_metrics.register_collector(whatsapp_keys)
