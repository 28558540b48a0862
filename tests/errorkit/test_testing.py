"""errorkit.testing and the pytest plugin: what users assert with."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sentry_sdk
import structlog

from errorkit import _storm, captured
from errorkit.testing import capture_events, capture_logs, storm_control


class Boom(Exception):
    pass


@captured("svc", "op", reraise=False)
def fails(phone: str = "+7 968 648 44 88") -> None:
    raise Boom(f"cannot reach {phone}")


def test_capture_events_without_sentry_initialised() -> None:
    assert not sentry_sdk.get_client().is_active()
    with capture_events() as events:
        fails()
    assert len(events) == 1
    assert not sentry_sdk.get_client().is_active()
    # after the block nothing is collected any more
    fails()
    assert len(events) == 1


def test_capture_events_scrubs_like_production() -> None:
    with capture_events() as events:
        fails()
    assert "968 648" not in json.dumps(events[0])
    assert "44 88" in events[0]["exception"]["values"][0]["value"]


def test_capture_events_restores_an_initialised_client() -> None:
    seen: list[dict[str, Any]] = []

    def user_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return event

    sentry_sdk.init(dsn="http://k@127.0.0.1:9/1", before_send=user_before_send)
    original = sentry_sdk.get_client()
    with capture_events() as events:
        fails()
    assert sentry_sdk.get_client() is original
    assert len(events) == 1
    # the initialised client's own before_send ran on the captured event
    assert len(seen) == 1


def test_capture_logs_collects_dicts_and_restores_configuration() -> None:
    before = structlog.get_config()
    with capture_logs() as lines:
        fails()
        structlog.get_logger().info("custom", token="secret-value")
    assert [line["event"] for line in lines] == ["operation_failed", "custom"]
    assert lines[0]["level"] == "error" and "timestamp" in lines[0]
    assert lines[1]["token"] == "[Filtered]"
    assert "968 648" not in json.dumps(lines, default=str)
    assert structlog.get_config() == before


def test_capture_helpers_reset_storm_budgets_on_entry() -> None:
    with storm_control(events_per_minute=1, log_lines_per_minute=1):
        with capture_events() as first:
            fails()
            fails()
        assert len(first) == 1
        with capture_events() as second:
            fails()
        assert len(second) == 1
        with capture_logs(level="info") as lines:
            fails()
        assert [line["event"] for line in lines] == ["operation_failed"]


def test_storm_control_helper_restores_previous() -> None:
    before = _storm.current()
    with storm_control(events_per_minute=3) as control:
        assert _storm.current() is control
    assert _storm.current() is before


def test_fixtures_are_registered(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    fails()
    assert len(errorkit_events) == 1
    assert [line["event"] for line in errorkit_logs] == ["operation_failed"]


def test_plugin_is_registered_through_the_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("errorkit")
    assert plugin is not None
    assert plugin.__name__ == "errorkit.pytest_plugin"
