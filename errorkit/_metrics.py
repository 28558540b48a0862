"""Prometheus metrics: the failure path's counters, and the registry to expose.

The counters are bumped where a report is decided (``_report``), never on a
boundary's success path. They live in prometheus_client's default registry, so
``prometheus_client.make_asgi_app()`` and ``start_http_server()`` serve them as
they are; :func:`registry` adds prometheus_client's multiprocess mode (when
``PROMETHEUS_MULTIPROC_DIR`` is set) and the collectors read at scrape time.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress

from prometheus_client import REGISTRY, CollectorRegistry, Counter, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from errorkit._config import settings

__all__ = [
    "FAILURES",
    "REJECTIONS",
    "SUPPRESSED",
    "count_failure",
    "count_rejection",
    "count_suppressed",
    "enabled",
    "exposition",
    "register_collector",
    "registry",
]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

FAILURES = Counter(
    "errorkit_failures",
    "Failures reported by the innermost errorkit boundary that met them, storm-held ones included.",
    ["component", "operation", "kind"],
)
REJECTIONS = Counter(
    "errorkit_rejections",
    "Expected exceptions (bad input, not found) met by errorkit boundaries.",
    ["component", "operation"],
)
SUPPRESSED = Counter(
    "errorkit_suppressed",
    "Failure reports held back by storm control, per channel (event: Sentry, log: error line).",
    ["component", "operation", "channel"],
)


def enabled() -> bool:
    """True unless ``ERRORKIT_METRICS=false`` (or ``setup(metrics=False)``)."""
    return settings.metrics


# --- hooks of the failure path (each never raises) ---------------------------------------


def count_failure(component: str, operation: str, kind: str) -> None:
    if settings.metrics:
        with suppress(Exception):  # counting can never break reporting
            FAILURES.labels(component, operation, kind).inc()


def count_rejection(component: str, operation: str) -> None:
    if settings.metrics:
        with suppress(Exception):
            REJECTIONS.labels(component, operation).inc()


def count_suppressed(component: str, operation: str, channel: str) -> None:
    if settings.metrics:
        with suppress(Exception):
            SUPPRESSED.labels(component, operation, channel).inc()


# --- exposition ------------------------------------------------------------------------

_lock = threading.Lock()
_scrape_collectors: list[Collector] = []
_multiprocess: CollectorRegistry | None = None


def register_collector(collector: Collector) -> None:
    """Expose ``collector`` (one read at scrape time) wherever :func:`registry` is served.

    Registering the same object again changes nothing.
    """
    with _lock:
        if any(known is collector for known in _scrape_collectors):
            return
        REGISTRY.register(collector)
        if _multiprocess is not None:
            _multiprocess.register(collector)
        _scrape_collectors.append(collector)


def registry() -> CollectorRegistry:
    """The registry to serve: prometheus_client's default one, or, in multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR`` set), one that sums every process's counters and
    histograms and adds this process's scrape-time collectors.
    """
    global _multiprocess
    if not os.environ.get(MULTIPROCESS_VARIABLE):
        return REGISTRY
    with _lock:
        if _multiprocess is None:
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            for collector in _scrape_collectors:
                combined.register(collector)
            _multiprocess = combined
        return _multiprocess


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """The body and content type of a scrape of :func:`registry`.

    ``accept`` is the request's ``Accept`` header: OpenMetrics when the scraper
    asks for it, else Prometheus's text format.
    """
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry()), content_type
