"""Every public DataLayer method wears the boundary with a declared policy; health_check."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import wrapt

from datalayer import Database, DataLayer, HealthReport, Settings
from datalayer._policy import POLICY_ATTRIBUTE, Policy
from datalayer.errors import ValidationError
from errorkit import Boundary, captured
from errorkit.testing import capture_events, capture_logs

# DESIGN.md's table, verbatim: the service-facing API.
FACADE_API = {
    "get_dialog_context": "user_id, company_id=None",
    "upsert_dialog_context": "context",
    "get_client_by_phone": "phone, company_id=None",
    "get_client_by_id": "client_id, company_id=None",
    "get_client_appointments": (
        "client_id, company_id=None, *, limit=100, order_by='datetime', descending=True"
    ),
    "get_upcoming_appointments": "client_id, company_id",
    "search_clients_by_name": "company_id, name, limit=100",
    "upsert_client": "client",
    "upsert_clients": "clients",
    "get_staff_by_id": "staff_id, company_id",
    "get_staff": "company_id, include_inactive=False",
    "get_staff_schedule": "staff_id, date, company_id=None",
    "get_staff_schedules": (
        "company_id, *, staff_id=None, date_from=None, date_to=None, is_working=None, limit=100"
    ),
    "upsert_staff_schedules": "schedules",
    "get_services": "company_id, include_inactive=False",
    "get_service_by_id": "service_id, company_id=None",
    "get_services_by_category": "company_id, category_id",
    "upsert_services": "services",
    "get_company": "company_id",
    "upsert_company": "company",
}
LIST_READS = {
    "get_client_appointments",
    "get_upcoming_appointments",
    "search_clients_by_name",
    "get_staff",
    "get_staff_schedules",
    "get_services",
    "get_services_by_category",
}
# Public, but not one of the 20: it describes failures instead of raising them, through
# a boundary of its own (used as a context manager), tested below.
OWN_BOUNDARY = {"health_check"}


def _public_methods(cls: type) -> list[str]:
    return sorted(
        name
        for name in dir(cls)
        if not name.startswith("_") and callable(inspect.getattr_static(cls, name))
    )


def _boundary_of(cls: type, name: str) -> Boundary | None:
    """The errorkit Boundary wrapping ``cls.name``, if it wears one."""
    wrapper = inspect.getattr_static(cls, name)
    if not isinstance(wrapper, wrapt.FunctionWrapper):
        return None
    boundary = getattr(wrapper._self_wrapper, "__self__", None)
    return boundary if isinstance(boundary, Boundary) else None


def _problems(cls: type) -> list[str]:
    """What is wrong with the boundary or declared policy of each public method of ``cls``."""
    problems = []
    for name in _public_methods(cls):
        if name in OWN_BOUNDARY:
            continue
        boundary = _boundary_of(cls, name)
        policy = getattr(getattr(cls, name), POLICY_ATTRIBUTE, None)
        if boundary is None:
            problems.append(f"{name}: no errorkit boundary")
            continue
        if not isinstance(policy, Policy):
            problems.append(f"{name}: no declared policy")
            continue
        if (boundary.component, boundary.operation) != ("data-layer", name):
            problems.append(f"{name}: boundary named {boundary.component}.{boundary.operation}")
        if ValidationError not in boundary.expected:
            problems.append(f"{name}: ValidationError not expected")
        if name.startswith("upsert_"):
            if policy.kind != "write" or boundary.reraise is not True:
                problems.append(f"{name}: a write must re-raise")
        elif name.startswith(("get_", "search_")):
            if policy.kind != "read" or not callable(boundary.reraise):
                problems.append(f"{name}: a read must decide at failure time")
            wanted = list if name in LIST_READS else None
            if boundary.default_factory is not wanted or boundary.default is not None:
                problems.append(f"{name}: wrong default")
        else:
            problems.append(f"{name}: neither a read nor a write")
    return problems


@pytest.mark.sync_only
def test_every_public_method_wears_the_boundary_with_a_policy() -> None:
    assert _public_methods(DataLayer) == sorted([*FACADE_API, *OWN_BOUNDARY])
    assert _problems(DataLayer) == []


@pytest.mark.sync_only
def test_the_coverage_check_catches_a_method_without_boundary() -> None:
    class Careless(DataLayer):
        def get_everything(self) -> list[Any]:
            return []

        @captured("data-layer")
        def upsert_nothing(self) -> None:  # pragma: no cover - never called
            return None

        @captured("data-layer", reraise=False)
        def get_nothing(self) -> None:  # pragma: no cover - never called
            return None

    assert _problems(Careless) == [
        "get_everything: no errorkit boundary",
        "get_nothing: no declared policy",
        "upsert_nothing: no declared policy",
    ]


@pytest.mark.parametrize("name", sorted(FACADE_API))
def test_signature_is_the_documented_one(name: str) -> None:
    parameters = list(inspect.signature(getattr(DataLayer, name)).parameters.values())[1:]
    rendered = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in rendered:
            rendered.append("*")
        text = parameter.name
        if parameter.default is not inspect.Parameter.empty:
            text += f"={parameter.default!r}"
        rendered.append(text)
    assert ", ".join(rendered) == FACADE_API[name]


@pytest.mark.sync_only
def test_wrapping_keeps_the_name() -> None:
    assert DataLayer.get_client_by_phone.__name__ == "get_client_by_phone"
    assert not inspect.iscoroutinefunction(DataLayer.get_client_by_phone)


# --- health_check --------------------------------------------------------------


def test_health_check_healthy(clean_db: Database) -> None:
    with capture_events() as events:
        report = DataLayer(clean_db).health_check()
    assert isinstance(report, HealthReport)
    assert report.healthy is True
    assert report.latency_ms is not None and report.latency_ms > 0
    assert report.pool["pool_max"] == clean_db.settings.max_connections
    assert report.error_kind is None
    assert report.as_dict()["healthy"] is True
    assert events == []


def test_health_check_on_a_dead_database_reports_once_and_describes(pg_url: str) -> None:
    database = Database(pg_url)
    database.close()
    with capture_events() as events, capture_logs() as logs:
        report = DataLayer(database).health_check()
    assert report.healthy is False
    assert report.latency_ms is None
    # A closed pool is a programming error, not an outage: internal, not transient.
    assert report.error_kind == "internal"
    assert len(events) == 1
    assert events[0]["tags"]["operation"] == "health_check"
    assert events[0]["tags"]["error.kind"] == "internal"
    assert [line["event"] for line in logs].count("operation_failed") == 1


def test_health_check_is_bounded_by_its_timeout(pg_url: str) -> None:
    database = Database(pg_url, Settings(max_connections=1, pool_timeout=5))
    try:
        # The only connection is taken: the ping has to wait.
        with database.connection(), capture_events() as events:
            report = DataLayer(database).health_check(timeout=0.2)
        assert report.healthy is False
        assert report.error_kind == "timeout"
        assert report.timeout_s == 0.2
        assert len(events) == 1
        assert events[0]["tags"]["operation"] == "health_check"
    finally:
        database.close()


@pytest.mark.parametrize("timeout", [0, -1, True, "1"])
def test_health_check_refuses_a_bad_timeout(clean_db: Database, timeout: Any) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        DataLayer(clean_db).health_check(timeout=timeout)
