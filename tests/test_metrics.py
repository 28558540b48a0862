"""The data layer's Prometheus metrics, on a real PostgreSQL: facade durations, pool
figures read at scrape time, WhatsApp key counts (cached), ``/metrics`` of the health
API parsed with prometheus_client's own parser and linted by promtool, and the alert
rules checked (and unit-tested) by promtool.

The facade histogram is process-wide and its operations are the facade's own names,
so those tests assert on deltas; the collectors are built fresh where a test needs
exact figures.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import test_api
import test_whatsapp
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_whatsapp import seed_keys

from datalayer import Database, DataLayer, Settings, TransientError
from datalayer._metrics import PoolCollector, WhatsAppKeysCollector, database_key_counts
from datalayer.api import create_app
from errorkit._config import settings
from errorkit.testing import capture_events, capture_logs

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docs" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "docs" / "prometheus" / "alerts.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (.ci/run installs it)"
)

serve = test_api.serve
wa_db = test_whatsapp.wa_db


@pytest.fixture
def metrics_off() -> Iterator[None]:
    saved = settings.metrics
    settings.metrics = False
    try:
        yield
    finally:
        settings.metrics = saved


def duration_count(operation: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "datalayer_operation_duration_seconds_count",
            {"operation": operation, "outcome": outcome},
        )
        or 0.0
    )


def samples_of(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return parse(generate_latest(registry).decode())


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def pool_samples(collector: PoolCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        name + "".join(f"{{{v}}}" for _, v in labels): value
        for (name, labels), value in samples_of(registry).items()
    }


# --- the facade's duration histogram ----------------------------------------------------


def test_every_facade_call_is_timed_with_its_outcome(clean_db: Database) -> None:
    facade = DataLayer(clean_db)
    before = {
        outcome: duration_count("get_company", outcome) for outcome in ("ok", "failed", "rejected")
    }
    with capture_logs():
        facade.upsert_company({"company_id": 7, "title": "Salon"})
        for _ in range(3):
            assert facade.get_company(7) is not None
        for bad in (-1, "x"):
            with pytest.raises(ValueError):
                facade.get_company(bad)
    assert {
        outcome: duration_count("get_company", outcome) - before[outcome]
        for outcome in ("ok", "failed", "rejected")
    } == {"ok": 3, "failed": 0, "rejected": 2}


def test_async_facade_calls_are_timed_in_the_same_histogram(
    clean_db: Database, pg_url: str
) -> None:
    """The async facade wears the same boundary, so the same series count its calls."""
    from datalayer import AsyncDatabase, AsyncDataLayer

    before = {
        outcome: duration_count("get_company", outcome) for outcome in ("ok", "failed", "rejected")
    }

    async def main() -> None:
        async with AsyncDatabase(pg_url) as db:
            facade = AsyncDataLayer(db)
            await facade.upsert_company({"company_id": 8, "title": "Salon"})
            for _ in range(2):
                assert await facade.get_company(8) is not None
            with pytest.raises(ValueError):
                await facade.get_company(-1)

    with capture_logs():
        asyncio.run(main())
    assert {
        outcome: duration_count("get_company", outcome) - before[outcome]
        for outcome in ("ok", "failed", "rejected")
    } == {"ok": 2, "failed": 0, "rejected": 1}


def test_a_failed_read_is_timed_as_failed_though_it_returns_none(unreachable_db: Database) -> None:
    facade = DataLayer(unreachable_db)
    before_failed = duration_count("get_staff", "failed")
    before_failures = (
        REGISTRY.get_sample_value(
            "errorkit_failures_total",
            {"component": "data-layer", "operation": "get_staff", "kind": "transient"},
        )
        or 0.0
    )
    with capture_logs(), capture_events():
        assert facade.get_staff(1) == []
        assert facade.get_staff(1) == []
    assert duration_count("get_staff", "failed") - before_failed == 2
    after_failures = REGISTRY.get_sample_value(
        "errorkit_failures_total",
        {"component": "data-layer", "operation": "get_staff", "kind": "transient"},
    )
    assert after_failures is not None and after_failures - before_failures == 2


def test_metrics_off_times_nothing(clean_db: Database, metrics_off: None) -> None:
    facade = DataLayer(clean_db)
    before = duration_count("get_services", "ok")
    facade.get_services(1)
    assert duration_count("get_services", "ok") == before


# --- pool figures -----------------------------------------------------------------------


@pytest.fixture
def small_db(pg_url: str) -> Iterator[Database]:
    with Database(
        pg_url, Settings(max_connections=1, pool_timeout=0.3, service_name="metrics-tests")
    ) as database:
        yield database


def test_pool_figures_are_read_at_scrape_time(small_db: Database) -> None:
    pools = PoolCollector()
    pools.watch(small_db)
    pools.watch(small_db)  # once, however often
    small_db.ping()
    assert pool_samples(pools) == {
        "datalayer_pool_connections{idle}": 1.0,
        "datalayer_pool_connections{in_use}": 0.0,
        "datalayer_pool_max_connections": 1.0,
        "datalayer_pool_waiting": 0.0,
        "datalayer_pool_timeouts_total": 0.0,
    }
    with small_db.connection():
        figures = pool_samples(pools)
        assert figures["datalayer_pool_connections{idle}"] == 0
        assert figures["datalayer_pool_connections{in_use}"] == 1


def _wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        time.sleep(0.01)


def test_waiting_callers_and_timeouts(small_db: Database) -> None:
    pools = PoolCollector()
    pools.watch(small_db)
    outcome: list[BaseException | None] = []

    def second_caller() -> None:
        try:
            small_db.ping()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with capture_logs(), small_db.connection():
        waiter = threading.Thread(target=second_caller)
        waiter.start()
        _wait_for(lambda: pool_samples(pools)["datalayer_pool_waiting"] == 1)
        assert pool_samples(pools)["datalayer_pool_waiting"] == 1
        waiter.join()
    assert len(outcome) == 1 and isinstance(outcome[0], TransientError)  # the pool timed out
    figures = pool_samples(pools)
    assert figures["datalayer_pool_waiting"] == 0
    assert figures["datalayer_pool_timeouts_total"] == 1


def test_several_pools_are_summed_and_closed_or_gone_ones_left_out(pg_url: str) -> None:
    pools = PoolCollector()
    first = Database(pg_url, Settings(max_connections=2, service_name="metrics-a"))
    second = Database(pg_url, Settings(max_connections=3, service_name="metrics-b"))
    pools.watch(first)
    pools.watch(second)
    try:
        assert pool_samples(pools)["datalayer_pool_max_connections"] == 5
        first.close()
        assert pool_samples(pools)["datalayer_pool_max_connections"] == 3
    finally:
        second.close()
    del first, second
    gc.collect()
    assert pool_samples(pools) == {}  # nothing watched is alive: no samples, no error


class AsyncLikeDatabase:
    """Any object with psycopg_pool's stats() keys will do (an AsyncDatabase, say);
    ``requests_errors`` is absent until the first timeout, as in psycopg_pool."""

    def stats(self) -> dict[str, int]:
        return {"pool_min": 0, "pool_max": 4, "pool_size": 3, "pool_available": 1}


def test_any_object_with_stats_is_a_pool() -> None:
    pools = PoolCollector()
    source = AsyncLikeDatabase()
    pools.watch(source)
    assert pool_samples(pools) == {
        "datalayer_pool_connections{idle}": 1.0,
        "datalayer_pool_connections{in_use}": 2.0,
        "datalayer_pool_max_connections": 4.0,
        "datalayer_pool_waiting": 0.0,
        "datalayer_pool_timeouts_total": 0.0,
    }


# --- WhatsApp key counts ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def whatsapp_samples(collector: WhatsAppKeysCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {labels[0][1]: value for (_, labels), value in samples_of(registry).items()}


def test_key_counts_are_exact_and_cached_for_thirty_seconds(wa_db: Database) -> None:
    seed_keys(wa_db, 40, expired=False, session_prefix="live")
    seed_keys(wa_db, 15, expired=True, session_prefix="old")
    clock = Clock()
    counted: list[int] = []
    counts = database_key_counts(wa_db)

    def counting() -> tuple[int, int] | None:
        counted.append(1)
        return counts()

    keys = WhatsAppKeysCollector(counting, clock=clock)
    assert whatsapp_samples(keys) == {"total": 55, "expired": 15}
    seed_keys(wa_db, 5, expired=True, session_prefix="older")
    clock.now += 29.9
    assert whatsapp_samples(keys) == {"total": 55, "expired": 15}  # cached
    clock.now += 0.1
    assert whatsapp_samples(keys) == {"total": 60, "expired": 20}
    assert len(counted) == 2  # three scrapes, two counts


def test_a_failed_count_is_reported_once_and_gives_no_samples(unreachable_db: Database) -> None:
    clock = Clock()
    keys = WhatsAppKeysCollector(database_key_counts(unreachable_db), clock=clock)
    with capture_logs() as lines:
        assert whatsapp_samples(keys) == {}
        assert whatsapp_samples(keys) == {}  # the failure is cached too: no second wait
    failed = [line for line in lines if line["event"] == "operation_failed"]
    assert [(f["component"], f["operation"]) for f in failed] == [("whatsapp", "key_counts")]


def test_an_async_database_feeds_its_own_figures() -> None:
    refreshed = {"figures": (10, 3)}  # what an async health path would keep up to date
    keys = WhatsAppKeysCollector(lambda: refreshed["figures"])
    assert whatsapp_samples(keys) == {"total": 10, "expired": 3}


def test_nothing_to_count_gives_no_samples() -> None:
    assert whatsapp_samples(WhatsAppKeysCollector()) == {}


def test_a_closed_database_is_not_counted(pg_url: str) -> None:
    database = Database(pg_url, Settings(service_name="metrics-closed"))
    database.close()
    assert database_key_counts(database)() is None


# --- /metrics of the health API -----------------------------------------------------------


def test_metrics_endpoint_serves_everything_and_promtool_accepts_it(
    wa_db: Database, serve: test_api.Serve
) -> None:
    seed_keys(wa_db, 12, expired=True, session_prefix="scrape")
    facade = DataLayer(wa_db)
    with capture_logs():
        facade.get_company(1)
        with pytest.raises(ValueError):
            facade.get_company(0)
    base = serve(create_app(wa_db))
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    names = {name for name, _ in samples}
    assert {
        "datalayer_operation_duration_seconds_count",
        "datalayer_pool_connections",
        "datalayer_pool_max_connections",
        "datalayer_pool_waiting",
        "datalayer_pool_timeouts_total",
        "datalayer_whatsapp_keys",
        "errorkit_rejections_total",
    } <= names
    assert samples[("datalayer_whatsapp_keys", (("state", "expired"),))] == 12
    assert samples[("datalayer_whatsapp_keys", (("state", "total"),))] == 12
    assert samples[("datalayer_pool_max_connections", ())] >= wa_db.settings.max_connections
    assert (
        samples[
            (
                "datalayer_operation_duration_seconds_count",
                (("operation", "get_company"), ("outcome", "rejected")),
            )
        ]
        >= 1
    )
    if PROMTOOL is not None:
        lint = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=response.content, capture_output=True, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

    openmetrics = httpx.get(
        f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")


def test_metrics_endpoint_on_an_async_database_counts_the_keys_awaited(
    wa_db: Database, pg_url: str, serve: test_api.Serve
) -> None:
    """On an AsyncDatabase the scrape's key counts are refreshed by the async endpoint."""
    from datalayer import AsyncDatabase

    seed_keys(wa_db, 7, expired=True, session_prefix="async-scrape")
    base = serve(create_app(AsyncDatabase(pg_url), open_database=True))
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert samples[("datalayer_whatsapp_keys", (("state", "expired"),))] == 7
    assert samples[("datalayer_whatsapp_keys", (("state", "total"),))] == 7
    assert samples[("datalayer_pool_max_connections", ())] >= 1


def test_metrics_endpoint_is_404_when_metrics_are_off(
    db: Database, serve: test_api.Serve, metrics_off: None
) -> None:
    response = httpx.get(f"{serve(create_app(db))}/metrics")
    assert response.status_code == 404
    assert response.json() == {"error": "metrics_disabled"}


def test_metrics_mount_in_any_asgi_app_with_prometheus_client(
    db: Database, serve: test_api.Serve
) -> None:
    """What docs/operations.md shows for a service's own app."""
    from prometheus_client import make_asgi_app
    from starlette.applications import Starlette

    from datalayer.metrics import watch_pool
    from errorkit import metrics

    app = Starlette()
    watch_pool(db)
    app.mount("/metrics", make_asgi_app(metrics.registry()))
    response = httpx.get(f"{serve(app)}/metrics", follow_redirects=True)
    assert response.status_code == 200
    assert "datalayer_pool_max_connections" in response.text


def test_multiprocess_scrape_of_the_health_api_sums_the_workers(
    pg_url: str, tmp_path: Path
) -> None:
    """Two worker processes call the facade and fail; the health API in a third process
    answers one scrape with the sum (prometheus_client's multiprocess mode)."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    worker = textwrap.dedent(
        """
        import sys
        from datalayer import Database, DataLayer, Settings
        from errorkit import captured
        from errorkit.testing import capture_logs

        @captured("mp-worker", "job", reraise=False)
        def job():
            raise ConnectionError("down")

        with capture_logs(), Database(sys.argv[1], Settings(service_name="mp")) as db:
            facade = DataLayer(db)
            for _ in range(int(sys.argv[2])):
                job()
                try:
                    facade.get_company(-1)
                except ValueError:
                    pass
        """
    )
    scrape = textwrap.dedent(
        """
        import sys
        from starlette.testclient import TestClient
        from datalayer import Database, Settings
        from datalayer.api import create_app

        with Database(sys.argv[1], Settings(service_name="mp")) as db:
            response = TestClient(create_app(db)).get("/metrics")
            assert response.status_code == 200, response.text
            sys.stdout.write(response.text)
        """
    )
    for count in ("2", "5"):
        subprocess.run([sys.executable, "-c", worker, pg_url, count], env=env, cwd=ROOT, check=True)
    result = subprocess.run(
        [sys.executable, "-c", scrape, pg_url],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    samples = parse(result.stdout)
    assert (
        samples[
            (
                "errorkit_failures_total",
                (("component", "mp-worker"), ("kind", "transient"), ("operation", "job")),
            )
        ]
        == 7
    )
    assert (
        samples[
            (
                "errorkit_rejections_total",
                (("component", "data-layer"), ("operation", "get_company")),
            )
        ]
        == 7
    )
    assert (
        samples[
            (
                "datalayer_operation_duration_seconds_count",
                (("operation", "get_company"), ("outcome", "rejected")),
            )
        ]
        == 7
    )
    # the answering process's own pool, read at scrape time
    assert samples[("datalayer_pool_max_connections", ())] == 3
    if PROMTOOL is not None:
        lint = subprocess.run(
            [PROMTOOL, "check", "metrics"],
            input=result.stdout.encode(),
            capture_output=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


# --- alert rules ----------------------------------------------------------------------------


@needs_promtool
def test_alert_rules_are_valid() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_fire_when_they_should() -> None:
    """promtool's rule unit tests: each alert fires on the series it is about, and not
    on a quiet service."""
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ALERT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in (
        "errorkit_failures_total",
        "errorkit_rejections_total",
        "errorkit_suppressed_total",
        "datalayer_operation_duration_seconds",
        "datalayer_pool_connections",
        "datalayer_pool_max_connections",
        "datalayer_pool_waiting",
        "datalayer_pool_timeouts_total",
        "datalayer_whatsapp_keys",
    ):
        assert f"`{name}" in operations, name
