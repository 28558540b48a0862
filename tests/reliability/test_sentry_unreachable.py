"""Sentry unreachable: a DSN to a closed port, and to a server that never answers.

Calls behave exactly as without Sentry (same results, same exceptions, the
event handed to the SDK's background worker rather than waited for), and
``flush`` / ``close`` return within the SDK's own timeouts instead of waiting
on the socket: that they return at all is the assertion (pytest-timeout would
catch a hang); the measured times are printed as figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
import structlog

from datalayer import Database, DataLayer, ValidationError
from errorkit import _storm, captured, setup
from errorkit._config import settings as errorkit_settings
from errorkit._setup import reset_for_tests

from ._sentry import BlackHole
from .conftest import record_figure

CALLS = 30
SLACK_MS = 1500
COMPANY = 7100


@pytest.fixture
def sentry_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """Initialise Sentry through ``errorkit.setup()`` with a given DSN; undo it after."""
    previous_client = sentry_sdk.get_client()
    previous_structlog = structlog.get_config()
    previous_storm = _storm.current()
    previous_level = errorkit_settings.log_level

    def start(dsn: str) -> Any:
        monkeypatch.setenv("SENTRY_DSN", dsn)
        monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", "0")
        monkeypatch.setenv("SENTRY_PROFILES_SAMPLE_RATE", "0")
        reset_for_tests()
        setup("reliability", env_file=None, log_stream="stderr")
        client = sentry_sdk.get_client()
        assert client.is_active() and client.dsn == dsn
        return client

    yield start
    sentry_sdk.get_global_scope().set_client(
        previous_client if previous_client.is_active() else None
    )
    reset_for_tests()
    structlog.configure(**previous_structlog)
    _storm.install(previous_storm)
    errorkit_settings.set_log_level(previous_level)


def workload(layer: DataLayer) -> list[Any]:
    """Successes, expected rejections and reported failures; returns what each call gave."""

    @captured("reliability", "always_fails", reraise=False, default="fallback")
    def always_fails(i: int) -> str:
        raise RuntimeError(f"failure {i}")

    outcomes: list[Any] = []
    for i in range(CALLS):
        outcomes.append(layer.get_company(COMPANY))
        outcomes.append(always_fails(i))
        try:
            layer.get_client_by_phone("not a phone")
        except ValidationError:
            outcomes.append("rejected")
    return outcomes


@pytest.fixture
def layer(clean_cluster_url: str) -> Iterator[DataLayer]:
    with Database(clean_cluster_url) as db:
        facade = DataLayer(db)
        facade.upsert_company({"company_id": COMPANY, "title": "Sentry-less salon"})
        yield facade


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _run(layer: DataLayer) -> tuple[list[Any], float]:
    started = time.perf_counter()
    outcomes = workload(layer)
    return outcomes, (time.perf_counter() - started) * 1000


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("endpoint", ["closed port", "black hole"])
def test_unreachable_sentry_changes_nothing_for_callers(
    layer: DataLayer,
    sentry_on: Callable[[str], Any],
    closed_dsn: str,
    black_hole: BlackHole,
    endpoint: str,
) -> None:
    baseline, baseline_ms = _run(layer)  # no Sentry client at all
    assert baseline.count("fallback") == CALLS

    dsn = closed_dsn if endpoint == "closed port" else black_hole.dsn
    client = sentry_on(dsn)
    # Every failure is handed to the SDK (budget 0 = no storm limit), so the
    # worker really has events it cannot deliver.
    _storm.install(_storm.StormControl(0, 0))
    outcomes, with_sentry_ms = _run(layer)
    assert outcomes == baseline

    flush_ms = _timed(lambda: sentry_sdk.flush(timeout=1.0))
    shutdown_timeout = client.options["shutdown_timeout"]
    close_ms = _timed(lambda: client.close())  # honours shutdown_timeout, then gives up
    if endpoint == "black hole":
        assert black_hole.accepted >= 1, "the SDK never tried to deliver"
    # Shutdown is bounded by the SDK's timeouts, not by the socket (slack for a busy machine).
    assert flush_ms < 1000 + SLACK_MS, f"flush(timeout=1) took {flush_ms:.0f} ms"
    assert close_ms < shutdown_timeout * 1000 + SLACK_MS, f"close() took {close_ms:.0f} ms"
    record_figure(
        f"Sentry unreachable ({endpoint})",
        f"{CALLS * 3} calls {with_sentry_ms:.0f} ms (without Sentry {baseline_ms:.0f} ms); "
        f"flush(timeout=1) {flush_ms:.0f} ms; close() {close_ms:.0f} ms "
        f"(shutdown_timeout {shutdown_timeout} s)",
    )
    # After shutdown the product still works, with nothing sent.
    assert workload(layer) == baseline
