"""DataLayer input checks: ValidationError before any SQL, a warning line, no Sentry event.

The facade under test sits on a *closed* Database: any statement it tried to
run would fail with a pool error (not a ValidationError) and be reported as
``operation_failed``; ``test_closed_database_fails_differently`` proves it.
So a ValidationError with no failure reported means no SQL ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from datalayer import Database, DataLayer
from datalayer._policy import POLICY_ATTRIBUTE as POLICY
from datalayer.errors import ValidationError
from datalayer.models import Company
from errorkit.testing import capture_events, capture_logs

DAY = date(2026, 12, 1)

# (method, args, kwargs): calls every one of which must be refused before any SQL.
INVALID: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_dialog_context", ("",), {}),
    ("get_dialog_context", ("   ",), {}),
    ("get_dialog_context", (None,), {}),
    ("get_dialog_context", ("u-1", 0), {}),
    ("get_dialog_context", ("u-1", True), {}),
    ("upsert_dialog_context", ({"user_id": "u-1"},), {}),
    ("upsert_dialog_context", ({"user_id": "u-1", "company_id": 1, "userId": "x"},), {}),
    ("upsert_dialog_context", ("u-1",), {}),
    ("get_client_by_phone", ("12345",), {}),
    ("get_client_by_phone", ("8 (968) 648-44-8X",), {}),
    ("get_client_by_phone", ("+7 968 648 44 88 12345",), {}),
    ("get_client_by_phone", (True,), {}),
    ("get_client_by_phone", ("89686484488", -1), {}),
    ("get_client_by_id", (0,), {}),
    ("get_client_by_id", (True,), {}),
    ("get_client_by_id", ("abc",), {}),
    ("get_client_by_id", (1.5,), {}),
    ("get_client_by_id", (1, "x"), {}),
    ("get_client_appointments", (False,), {}),
    ("get_client_appointments", (1,), {"order_by": "nope"}),
    ("get_client_appointments", (1,), {"order_by": "datetime DESC"}),
    ("get_client_appointments", (1,), {"limit": "10"}),
    ("get_client_appointments", (1,), {"descending": "yes"}),
    ("get_upcoming_appointments", (1, None), {}),
    ("get_upcoming_appointments", (-1, 1), {}),
    ("search_clients_by_name", (1, ""), {}),
    ("search_clients_by_name", (1, " \t "), {}),
    ("search_clients_by_name", (None, "Анна"), {}),
    ("search_clients_by_name", (1, 5), {}),
    ("search_clients_by_name", (1, "Анна"), {"limit": True}),
    ("upsert_client", ({"company_id": 1, "name": "Анна"},), {}),
    ("upsert_client", ({"yclients_id": 1, "company_id": 1, "phone": "123"},), {}),
    ("upsert_client", ({"yclients_id": 0, "company_id": 1},), {}),
    ("upsert_client", ([{"yclients_id": 1, "company_id": 1}],), {}),
    ("upsert_clients", ({"yclients_id": 1, "company_id": 1},), {}),
    (
        "upsert_clients",
        ([{"yclients_id": 1, "company_id": 1}, {"yclients_id": 2, "company_id": "x"}],),
        {},
    ),
    ("upsert_clients", ("clients",), {}),
    ("get_staff_by_id", (1, None), {}),
    ("get_staff_by_id", (0, 1), {}),
    ("get_staff", (0,), {}),
    ("get_staff", (1, "yes"), {}),
    ("get_staff_schedule", (1, "01.12.2026"), {}),
    ("get_staff_schedule", (1, datetime(2026, 12, 1, tzinfo=UTC)), {}),
    ("get_staff_schedule", (True, DAY), {}),
    ("get_staff_schedule", (1, DAY, 0), {}),
    ("get_staff_schedules", (1,), {"staff_id": 0}),
    ("get_staff_schedules", (1,), {"date_from": "tomorrow"}),
    ("get_staff_schedules", (1,), {"date_from": "2026-12-05", "date_to": "2026-12-01"}),
    ("get_staff_schedules", (1,), {"is_working": "true"}),
    ("get_staff_schedules", (1,), {"limit": None}),
    ("get_staff_schedules", (None,), {}),
    ("upsert_staff_schedules", ([{"yclients_staff_id": 1, "company_id": 1}],), {}),
    (
        "upsert_staff_schedules",
        ([{"yclients_staff_id": 1, "company_id": 1, "date": "2026-13-01"}],),
        {},
    ),
    ("get_services", ("x",), {}),
    ("get_services", (1, 1), {}),
    ("get_service_by_id", (-5,), {}),
    ("get_service_by_id", (5, 0), {}),
    ("get_services_by_category", (1, None), {}),
    ("get_services_by_category", (1, True), {}),
    ("upsert_services", ([{"yclients_id": 1}],), {}),
    ("upsert_services", ("services",), {}),
    ("get_company", (None,), {}),
    ("get_company", ("1a",), {}),
    ("upsert_company", ({"title": "Салон"},), {}),
    ("upsert_company", ({"company_id": 1, "phone": "not a phone"},), {}),
    ("upsert_company", ({"company_id": 1, "bogus": 1},), {}),
]


@pytest.fixture(scope="module")
def closed_db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    database.close()
    yield database


def test_closed_database_fails_differently(closed_db: Database) -> None:
    """The premise of this module: SQL on the closed database is not a ValidationError."""
    with capture_events() as events, capture_logs() as logs, pytest.raises(Exception) as info:
        DataLayer(closed_db, strict=True).get_company(1)
    assert not isinstance(info.value, ValidationError)
    assert len(events) == 1
    assert [line["event"] for line in logs].count("operation_failed") == 1


@pytest.mark.sync_only
def test_every_method_has_invalid_cases() -> None:
    declared = {name for name in vars(DataLayer) if hasattr(getattr(DataLayer, name), POLICY)}
    assert len(declared) == 20
    assert {method for method, _, _ in INVALID} == declared


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    INVALID,
    ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(INVALID)],
)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_invalid_input_raises_before_any_sql(
    closed_db: Database, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], strict: bool
) -> None:
    facade = DataLayer(closed_db, strict=strict)
    with capture_events() as events, capture_logs() as logs, pytest.raises(ValidationError):
        getattr(facade, method)(*args, **kwargs)
    assert events == []  # expected: never a Sentry event
    rejected = [line for line in logs if line.get("event") == "operation_rejected"]
    assert len(rejected) == 1, logs
    assert (rejected[0]["component"], rejected[0]["operation"]) == ("data-layer", method)
    assert not [line for line in logs if line.get("event") == "operation_failed"]


def test_rejected_input_is_not_echoed_in_logs(closed_db: Database) -> None:
    facade = DataLayer(closed_db)
    with capture_events() as events, capture_logs() as logs:
        with pytest.raises(ValidationError):
            facade.get_client_by_phone("8 (968) 648-44-8X")
        with pytest.raises(ValidationError):
            facade.upsert_client({"yclients_id": 1, "company_id": 1, "name": "Каренина", "x": 1})
    text = json.dumps([events, logs], default=str, ensure_ascii=False)
    assert "648-44-8X" not in text
    assert "Каренина" not in text


def test_a_model_of_the_wrong_type_is_refused(closed_db: Database) -> None:
    company = Company(company_id=1, title="Салон")
    with pytest.raises(ValidationError, match="Client"):
        DataLayer(closed_db).upsert_client(company)  # type: ignore[arg-type]


def test_strict_must_be_a_bool(closed_db: Database) -> None:
    with pytest.raises(ValidationError, match="strict"):
        DataLayer(closed_db, strict="yes")  # type: ignore[arg-type]
