"""DataLayer upserts on a real database: stored rows, conflict keys, normalised values."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from datalayer import Database, DataLayer
from datalayer.errors import ValidationError
from datalayer.models import Client, Company, DialogContext, Service, StaffSchedule

DAY = date(2026, 12, 1)


@pytest.fixture
def facade(clean_db: Database) -> DataLayer:
    return DataLayer(clean_db)


def _count(db: Database, table: str) -> int:
    with db.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _model(cls: type[Any], **fields: Any) -> Any:
    """A model instance; the fields not given keep the model's defaults."""
    return cls(**fields)


def test_upsert_dialog_context_inserts_then_updates(clean_db: Database, facade: DataLayer) -> None:
    first = facade.upsert_dialog_context(
        {"user_id": "u-1", "company_id": 1, "state": "greeting", "messages": [{"text": "hi"}]}
    )
    assert isinstance(first, DialogContext)
    assert first.state == "greeting"
    second = facade.upsert_dialog_context({"user_id": "u-1", "company_id": 1, "state": "booking"})
    assert second.state == "booking"
    assert _count(clean_db, "dialog_contexts") == 1
    assert facade.get_dialog_context("u-1", 1) == second


def test_upsert_client_normalises_the_phone(clean_db: Database, facade: DataLayer) -> None:
    """Not to repeat: no phone normaliser; a stored phone never matched a typed one."""
    stored = facade.upsert_client(
        {"yclients_id": 101, "company_id": 1, "name": "Анна", "phone": "8 (968) 648-44-88"}
    )
    assert isinstance(stored, Client)
    assert stored.phone == "79686484488"
    assert facade.get_client_by_phone("+7 968 648 44 88") == stored


def test_upsert_client_accepts_a_model_and_updates_in_place(
    clean_db: Database, facade: DataLayer
) -> None:
    facade.upsert_client({"yclients_id": 101, "company_id": 1, "name": "Анна"})
    updated = facade.upsert_client(
        _model(Client, yclients_id=101, company_id=1, name="Анна Кузнецова", phone="9686484488")
    )
    assert (updated.name, updated.phone) == ("Анна Кузнецова", "79686484488")
    assert _count(clean_db, "clients") == 1


def test_upsert_clients_any_size_and_any_iterable(clean_db: Database, facade: DataLayer) -> None:
    count = facade.upsert_clients(
        {"yclients_id": i, "company_id": 1, "name": f"client {i}"} for i in range(1, 2502)
    )
    assert count == 2501
    assert _count(clean_db, "clients") == 2501
    assert facade.upsert_clients([]) == 0
    again = facade.upsert_clients(
        [{"yclients_id": 1, "company_id": 1, "name": "renamed", "phone": "89686484488"}]
    )
    assert again == 1
    assert _count(clean_db, "clients") == 2501
    client = facade.get_client_by_id(1, 1)
    assert client is not None
    assert (client.name, client.phone) == ("renamed", "79686484488")


def test_upsert_staff_schedules_keys_on_staff_date_company(
    clean_db: Database, facade: DataLayer
) -> None:
    base = {"yclients_staff_id": 5, "company_id": 1, "date": DAY, "is_working": True}
    assert facade.upsert_staff_schedules([base]) == 1
    facade.upsert_staff_schedules(
        [
            {**base, "is_working": False},  # same key: updates
            {**base, "yclients_staff_id": 6},  # other staff
            {**base, "date": "2026-12-02"},  # other date
            {**base, "company_id": 2},  # other company
        ]
    )
    assert _count(clean_db, "staff_schedules") == 4
    schedule = facade.get_staff_schedule(5, DAY, 1)
    assert isinstance(schedule, StaffSchedule)
    assert schedule.is_working is False


def test_upsert_services(clean_db: Database, facade: DataLayer) -> None:
    service = _model(Service, yclients_id=1, company_id=1, title="Стрижка", price_min=1000)
    assert facade.upsert_services([service]) == 1
    assert facade.upsert_services([{"yclients_id": 1, "company_id": 1, "title": "Стрижка+"}]) == 1
    assert _count(clean_db, "services") == 1
    stored = facade.get_service_by_id(1, 1)
    assert stored is not None
    assert stored.title == "Стрижка+"


def test_upsert_company_twice_updates_the_same_row(clean_db: Database, facade: DataLayer) -> None:
    first = facade.upsert_company({"company_id": 1, "title": "Салон", "phone": "+7 968 648 44 88"})
    assert isinstance(first, Company)
    assert first.phone == "79686484488"
    second = facade.upsert_company({"company_id": 1, "title": "Салон 2"})
    assert (second.company_id, second.title) == (1, "Салон 2")
    assert _count(clean_db, "companies") == 1
    assert facade.get_company(1) == second


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("upsert_client", {"yclients_id": 1, "company_id": 1, "clientPhone": "1"}),
        ("upsert_company", {"company_id": 1, "companyTitle": "x"}),
        ("upsert_dialog_context", {"user_id": "u", "company_id": 1, "userId": "u"}),
        ("upsert_clients", [{"yclients_id": 1, "company_id": 1, "staffId": 1}]),
        ("upsert_services", [{"yclients_id": 1, "company_id": 1, "categoryId": 1}]),
        (
            "upsert_staff_schedules",
            [{"yclients_staff_id": 1, "company_id": 1, "date": DAY, "staff_id": 1}],
        ),
    ],
)
def test_unknown_keys_are_refused(
    clean_db: Database, facade: DataLayer, method: str, payload: Any
) -> None:
    """Not to repeat: camelCase or wrong names silently matched nothing."""
    with pytest.raises(ValidationError, match="unknown fields"):
        getattr(facade, method)(payload)
    table = {
        "upsert_client": "clients",
        "upsert_clients": "clients",
        "upsert_company": "companies",
        "upsert_dialog_context": "dialog_contexts",
        "upsert_services": "services",
        "upsert_staff_schedules": "staff_schedules",
    }[method]
    assert _count(clean_db, table) == 0


def _stored(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.connection() as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("blank", ["", " ", " \t\n\u00a0"])
def test_a_blank_client_name_is_stored_as_null(
    clean_db: Database, facade: DataLayer, blank: str
) -> None:
    """Booking systems hold clients without names: a blank one is no name, not an error."""
    stored = facade.upsert_client({"yclients_id": 1, "company_id": 1, "name": blank})
    assert stored.name is None
    facade.upsert_client(_model(Client, yclients_id=2, company_id=1, name=blank))
    assert _stored(clean_db, "SELECT yclients_id, name FROM clients ORDER BY 1") == [
        (1, None),
        (2, None),
    ]


def test_one_nameless_client_does_not_fail_a_sync(clean_db: Database, facade: DataLayer) -> None:
    facade.upsert_client({"yclients_id": 2, "company_id": 1, "name": "Анна"})
    count = facade.upsert_clients(
        [
            {"yclients_id": 1, "company_id": 1, "name": " Мария "},
            {"yclients_id": 2, "company_id": 1, "name": "   "},  # the name was cleared upstream
            {"yclients_id": 3, "company_id": 1, "phone": "89686484488", "name": ""},
        ]
    )
    assert count == 3
    assert _stored(clean_db, "SELECT yclients_id, name FROM clients ORDER BY 1") == [
        (1, " Мария "),  # a real name is stored as given
        (2, None),
        (3, None),
    ]


def test_a_blank_staff_name_in_a_schedule_is_stored_as_null(
    clean_db: Database, facade: DataLayer
) -> None:
    facade.upsert_staff_schedules(
        [
            {"yclients_staff_id": 5, "company_id": 1, "date": DAY, "staff_name": " "},
            _model(StaffSchedule, yclients_staff_id=6, company_id=1, date=DAY, staff_name=""),
            {"yclients_staff_id": 7, "company_id": 1, "date": DAY, "staff_name": "Ольга"},
        ]
    )
    assert _stored(
        clean_db, "SELECT yclients_staff_id, staff_name FROM staff_schedules ORDER BY 1"
    ) == [(5, None), (6, None), (7, "Ольга")]


def test_a_blank_search_term_is_still_refused(clean_db: Database, facade: DataLayer) -> None:
    facade.upsert_client({"yclients_id": 1, "company_id": 1, "name": ""})
    for term in ("", "  "):
        with pytest.raises(ValidationError, match="name must not be empty"):
            facade.search_clients_by_name(1, term)
