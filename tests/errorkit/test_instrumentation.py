"""errorkit's Prometheus counters and the boundary's ``observer``: exact counts, parsed
with prometheus_client's own parser, and an exposition promtool accepts.

The counters are process-wide; each test uses labels of its own (a fresh component),
so the values it reads are its own, exact, not deltas.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import errorkit
from errorkit import Boundary, captured
from errorkit import metrics as errorkit_metrics
from errorkit._boundary import _Observed
from errorkit._config import settings
from errorkit.testing import capture_events, capture_logs, storm_control

ROOT = Path(__file__).resolve().parents[2]


class Outage(ConnectionError):
    pass


class BadInput(ValueError):
    pass


@pytest.fixture
def component() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def scraped(component: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(sample name, labels) -> value`` of ``component``'s counter samples in a real scrape
    (the ``_created`` timestamps left out)."""
    body, content_type = errorkit_metrics.exposition()
    assert content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.labels.get("component") == component and sample.name.endswith("_total"):
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "component"))
                found[(sample.name, labels)] = sample.value
    return found


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- counters ----------------------------------------------------------------------------


def test_each_failure_counted_once_by_the_boundary_that_reports_it(component: str) -> None:
    @captured(component, "inner")
    def inner() -> None:
        raise Outage("server closed the connection")

    @captured(component, "outer", reraise=False)
    def outer() -> None:
        inner()

    with capture_logs():
        for _ in range(3):
            outer()
    assert scraped(component) == {
        ("errorkit_failures_total", (("kind", "transient"), ("operation", "inner"))): 3.0,
    }


def test_rejections_counted_and_never_as_failures(component: str) -> None:
    @captured(component, "lookup", expected=(BadInput,))
    def lookup() -> None:
        raise BadInput("company_id must be positive")

    @captured(component, "outer", expected=(BadInput,))
    def outer() -> None:
        lookup()

    with capture_logs():
        for _ in range(4):
            with pytest.raises(BadInput):
                outer()
    assert scraped(component) == {
        ("errorkit_rejections_total", (("operation", "lookup"),)): 4.0,
    }


def test_suppressed_reports_counted_per_channel_and_the_numbers_add_up(component: str) -> None:
    @captured(component, "get", reraise=False)
    def get() -> None:
        raise Outage("server closed the connection")

    with capture_logs() as lines, capture_events() as events, storm_control(3, 5):
        for _ in range(20):
            get()
        sent_events = len(events)
        sent_lines = sum(1 for line in lines if line["event"] == "operation_failed")
    assert (sent_events, sent_lines) == (3, 5)
    samples = scraped(component)
    failures = samples[("errorkit_failures_total", (("kind", "transient"), ("operation", "get")))]
    held_events = samples[
        ("errorkit_suppressed_total", (("channel", "event"), ("operation", "get")))
    ]
    held_lines = samples[("errorkit_suppressed_total", (("channel", "log"), ("operation", "get")))]
    assert failures == 20
    assert (held_events, held_lines) == (17, 15)
    assert sent_events + held_events == failures
    assert sent_lines + held_lines == failures


def test_without_sentry_no_event_is_held_back(component: str) -> None:
    @captured(component, "get", reraise=False)
    def get() -> None:
        raise Outage("down")

    with capture_logs(), storm_control(1, 2):
        for _ in range(5):
            get()
    assert (
        value("errorkit_suppressed_total", component=component, operation="get", channel="event")
        == 0
    )
    assert (
        value("errorkit_suppressed_total", component=component, operation="get", channel="log") == 3
    )


def test_the_context_manager_and_async_boundaries_count_too(component: str) -> None:
    async def fail() -> None:
        async with captured(component, "async_block", reraise=False):
            raise Outage("down")

    with capture_logs():
        with captured(component, "block", reraise=False):
            raise TimeoutError("statement timeout")
        asyncio.run(fail())
    assert (
        value("errorkit_failures_total", component=component, operation="block", kind="timeout")
        == 1
    )
    assert (
        value(
            "errorkit_failures_total",
            component=component,
            operation="async_block",
            kind="transient",
        )
        == 1
    )


def test_metrics_off_counts_nothing(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORKIT_METRICS", "false")
    errorkit.setup(env_file=None, log_stream="stderr")
    assert errorkit_metrics.enabled() is False

    @captured(component, "get", reraise=False, expected=(BadInput,))
    def get(exc: Exception) -> None:
        raise exc

    with capture_logs(), storm_control(1, 1):
        get(Outage("down"))
        get(Outage("down"))
        with pytest.raises(BadInput):
            get(BadInput("bad"))
    assert scraped(component) == {}


def test_setup_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORKIT_METRICS", "true")
    errorkit.setup(env_file=None, log_stream="stderr", metrics=False)
    assert settings.metrics is False
    errorkit.setup(env_file=None, log_stream="stderr", metrics=True)
    assert settings.metrics is True


def test_bad_metrics_variable_raises_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORKIT_METRICS", "sometimes")
    with pytest.raises(ValueError, match="ERRORKIT_METRICS"):
        errorkit.setup(env_file=None, log_stream="stderr")


def test_a_failing_counter_never_breaks_the_report(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from errorkit import _metrics

    def broken(*args: Any) -> Any:
        raise RuntimeError("registry trouble")

    monkeypatch.setattr(_metrics.FAILURES, "labels", broken)

    @captured(component, "get", reraise=False, default="fallback")
    def get() -> str:
        raise Outage("down")

    with capture_logs() as lines:
        assert get() == "fallback"
    assert [line["event"] for line in lines] == ["operation_failed"]


# --- the observer ------------------------------------------------------------------------


def test_a_boundary_without_observer_keeps_its_success_path() -> None:
    assert type(captured("c", "op")) is Boundary
    assert type(captured("c", "op", observer=lambda outcome, seconds: None)) is _Observed

    @captured("c", "plain")
    def plain() -> int:
        return 1

    # the decorated function's boundary is a plain Boundary too: no observer code runs
    assert type(plain._self_wrapper.__self__) is Boundary  # type: ignore[attr-defined]


def test_observer_gets_outcome_and_duration_of_every_call(component: str) -> None:
    seen: list[tuple[str, float]] = []

    def observe(outcome: str, seconds: float) -> None:
        seen.append((outcome, seconds))

    @captured(component, "op", reraise=False, expected=(BadInput,), observer=observe)
    def op(exc: Exception | None) -> str:
        if exc is not None:
            raise exc
        return "ok"

    with capture_logs():
        assert op(None) == "ok"
        assert op(Outage("down")) is None
        with pytest.raises(BadInput):
            op(BadInput("bad"))
    assert [outcome for outcome, _ in seen] == ["ok", "failed", "rejected"]
    assert all(0 <= seconds < 60 for _, seconds in seen)


def test_observer_sees_an_inner_boundarys_failure_as_failed(component: str) -> None:
    seen: list[str] = []

    @captured(component, "inner")
    def inner() -> None:
        raise Outage("down")

    @captured(component, "outer", reraise=False, observer=lambda o, s: seen.append(o))
    def outer() -> None:
        inner()

    with capture_logs():
        outer()
    assert seen == ["failed"]


def test_observer_on_every_function_kind_and_block() -> None:
    seen: list[str] = []

    def observe(outcome: str, seconds: float) -> None:
        seen.append(outcome)

    @captured("c", "gen", observer=observe)
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    @captured("c", "coro", observer=observe)
    async def coro() -> int:
        return 1

    @captured("c", "agen", observer=observe)
    async def agen() -> Any:
        yield 1

    async def drive() -> None:
        await coro()
        async for _ in agen():
            pass

    assert list(gen()) == [1, 2]
    asyncio.run(drive())
    with captured("c", "block", observer=observe):
        pass
    assert seen == ["ok", "ok", "ok", "ok"]


def test_a_broken_observer_never_breaks_the_caller() -> None:
    def broken(outcome: str, seconds: float) -> None:
        raise RuntimeError("observer trouble")

    @captured("c", "op", reraise=False, default=-1, observer=broken)
    def op(fail: bool) -> int:
        if fail:
            raise Outage("down")
        return 1

    with capture_logs("info") as lines:
        assert op(False) == 1
        assert op(True) == -1
    assert [line["event"] for line in lines] == ["operation_failed"]


# --- exposition --------------------------------------------------------------------------


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    body, content_type = errorkit_metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (.ci/run installs it)")
def test_promtool_accepts_the_exposition(component: str) -> None:
    @captured(component, "get", reraise=False)
    def get() -> None:
        raise Outage("down")

    with capture_logs(), capture_events(), storm_control(1, 1):
        get()
        get()
    body, _ = errorkit_metrics.exposition()
    assert f'component="{component}"'.encode() in body
    result = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""  # no lint remark either


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    """Two worker processes count failures; a third process's scrape sees the sum."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    worker = textwrap.dedent(
        """
        import sys
        from errorkit import captured
        from errorkit.testing import capture_logs

        @captured("mp-test", "get", reraise=False)
        def get():
            raise ConnectionError("down")

        with capture_logs():
            for _ in range(int(sys.argv[1])):
                get()
        """
    )
    scrape = "from errorkit import metrics; print(metrics.exposition()[0].decode())"
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", worker, count], env=env, cwd=ROOT, check=True)
    result = subprocess.run(
        [sys.executable, "-c", scrape],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    samples = {
        (s.name, s.labels.get("component"), s.labels.get("operation")): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    assert samples[("errorkit_failures_total", "mp-test", "get")] == 7.0
