"""Storm control: an outage costs a handful of reports, and the numbers still add up."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import errorkit
from errorkit import captured
from errorkit._config import settings
from errorkit.testing import capture_events, capture_logs, storm_control


class Outage(Exception):
    pass


class Other(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@captured("data-layer", "get_client", reraise=False)
def get_client(exc: Exception) -> None:
    raise exc


def failures_accounted_by_events(events: list[dict[str, Any]]) -> int:
    """Each boundary event is one failure plus the ones it says were held back before it;
    a flush event (no exception) carries only held-back ones."""
    total = 0
    for event in events:
        total += event["contexts"]["errorkit"]["suppressed"]
        if "exception" in event:
            total += 1
    return total


def failures_accounted_by_lines(lines: list[dict[str, Any]]) -> int:
    return sum(
        1 if line["event"] == "operation_failed" else line["suppressed"]
        for line in lines
        if line["event"] in ("operation_failed", "operation_failures_suppressed")
    )


def by_fingerprint(events: list[dict[str, Any]], type_name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["fingerprint"][-1].endswith(type_name)]


def test_ten_thousand_failures_cost_ten_events_and_add_up_exactly() -> None:
    clock = Clock()
    with (
        capture_events() as events,
        capture_logs(level="info") as lines,
        storm_control(events_per_minute=10, log_lines_per_minute=60, clock=clock),
    ):
        for i in range(10_000):
            get_client(Outage("db down"))
            if i % 1000 == 0:
                get_client(Other("something else"))
        outage_events_before_flush = len(by_fingerprint(events, "Outage"))
        errorkit.flush_suppressed()

    assert outage_events_before_flush == 10
    outage = by_fingerprint(events, "Outage")
    other = by_fingerprint(events, "Other")
    assert failures_accounted_by_events(outage) == 10_000
    (summary,) = [e for e in outage if "exception" not in e]
    assert summary["level"] == "warning"
    assert summary["tags"] == {
        "component": "data-layer",
        "operation": "get_client",
        "error.kind": "internal",
    }
    # The other fingerprint had its own budget: all 10 of its failures were sent.
    assert len(other) == 10
    assert failures_accounted_by_events(other) == 10
    outage_lines = [line for line in lines if line.get("error_type", "").endswith("Outage")]
    assert len([x for x in outage_lines if x["event"] == "operation_failed"]) == 60
    assert failures_accounted_by_lines(outage_lines) == 10_000


def test_policy_is_unchanged_during_a_storm() -> None:
    @captured("svc", "hard")
    def hard() -> None:
        raise Outage

    @captured("svc", "soft", reraise=False, default_factory=list)
    def soft() -> list[int]:
        raise Outage

    with capture_events(), storm_control(events_per_minute=1, log_lines_per_minute=1):
        for _ in range(50):
            with pytest.raises(Outage):
                hard()
            assert soft() == []


def test_eight_threads_lose_and_double_nothing() -> None:
    per_thread = 1000
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            get_client(Outage("db down"))

    with (
        capture_events() as events,
        capture_logs(level="info") as lines,
        storm_control(events_per_minute=10, log_lines_per_minute=60, clock=Clock()),
    ):
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errorkit.flush_suppressed()

    assert len([e for e in events if "exception" in e]) == 10
    assert failures_accounted_by_events(events) == 8 * per_thread
    assert failures_accounted_by_lines(lines) == 8 * per_thread


def test_next_window_event_carries_the_held_back_count() -> None:
    clock = Clock()
    with (
        capture_events() as events,
        capture_logs(level="info") as lines,
        storm_control(events_per_minute=10, log_lines_per_minute=12, clock=clock),
    ):
        for _ in range(15):
            get_client(Outage())
        assert len(events) == 10
        assert [e["contexts"]["errorkit"]["suppressed"] for e in events] == [0] * 10
        clock.now += 30  # same window: still held back
        get_client(Outage())
        assert len(events) == 10
        clock.now += 31  # the window has passed
        get_client(Outage())

    assert len(events) == 11
    assert events[-1]["contexts"]["errorkit"]["suppressed"] == 6
    assert failures_accounted_by_events(events) == 17
    # log lines: 12 sent, 4 held back, then one warning line with the count before line 13
    summary = [line for line in lines if line["event"] == "operation_failures_suppressed"]
    assert [line["suppressed"] for line in summary] == [4]
    assert summary[0]["level"] == "warning"
    assert summary[0]["operation"] == "get_client"
    assert lines[-1]["event"] == "operation_failed"
    assert lines[-2] is not None and lines[-2]["event"] == "operation_failures_suppressed"
    assert failures_accounted_by_lines(lines) == 17


def test_least_recently_used_fingerprints_are_dropped_with_their_counts_reported() -> None:
    with (
        capture_logs(level="info") as lines,
        storm_control(events_per_minute=1, log_lines_per_minute=1, max_fingerprints=2) as control,
    ):
        for op in ("a", "a", "a", "b", "c"):
            with captured("svc", op, reraise=False):
                raise Outage
        assert len(control.log_lines._budgets) == 2
    summary = [line for line in lines if line["event"] == "operation_failures_suppressed"]
    assert [(line["operation"], line["suppressed"]) for line in summary] == [("a", 2)]
    assert failures_accounted_by_lines(lines) == 5


def test_zero_means_no_limit() -> None:
    with (
        capture_events() as events,
        storm_control(events_per_minute=0, log_lines_per_minute=0),
    ):
        for _ in range(30):
            get_client(Outage())
    assert len(events) == 30


def test_setup_arguments_and_environment_set_the_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORKIT_EVENTS_PER_MINUTE", "3")
    monkeypatch.setenv("ERRORKIT_LOG_LINES_PER_MINUTE", "4")
    errorkit.setup(env_file=None)
    assert (settings.events_per_minute, settings.log_lines_per_minute) == (3, 4)
    with capture_events() as events, capture_logs(level="info") as lines:
        for _ in range(10):
            get_client(Outage())
    assert len(events) == 3
    assert len([line for line in lines if line["event"] == "operation_failed"]) == 4

    errorkit.setup(env_file=None, events_per_minute=2, log_lines_per_minute=0)
    assert (settings.events_per_minute, settings.log_lines_per_minute) == (2, 0)
    with capture_events() as events, capture_logs(level="info") as lines:
        for _ in range(10):
            get_client(Outage())
    assert len(events) == 2
    assert len([line for line in lines if line["event"] == "operation_failed"]) == 10


def test_bad_budget_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERRORKIT_EVENTS_PER_MINUTE", "many")
    with pytest.raises(ValueError, match="ERRORKIT_EVENTS_PER_MINUTE"):
        errorkit.setup(env_file=None)


def test_a_count_carried_by_an_event_that_failed_to_send_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sentry_sdk

    clock = Clock()
    real_capture = sentry_sdk.Scope.capture_exception

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("sdk bug")

    with (
        capture_events() as events,
        storm_control(events_per_minute=1, log_lines_per_minute=0, clock=clock),
    ):
        get_client(Outage())  # sent
        for _ in range(5):
            get_client(Outage())  # held back
        clock.now += 61
        monkeypatch.setattr(sentry_sdk.Scope, "capture_exception", explode)
        get_client(Outage())  # admitted with 5 carried, but the send fails
        monkeypatch.setattr(sentry_sdk.Scope, "capture_exception", real_capture)
        clock.now += 61
        get_client(Outage())  # sent, carrying the 5 again
    assert [e["contexts"]["errorkit"]["suppressed"] for e in events] == [0, 5]
