"""DataLayer reads on a real database: typed results, not found as None / [], filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from datalayer import Database, DataLayer
from datalayer.errors import ValidationError
from datalayer.models import Booking, Client, Company, DialogContext, Service, Staff, StaffSchedule
from datalayer.repositories import BookingsRepository

DAY = date(2026, 12, 1)


@pytest.fixture
def facade(clean_db: Database) -> DataLayer:
    return DataLayer(clean_db)


def _client(yclients_id: int, company_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"yclients_id": yclients_id, "company_id": company_id, **fields}


def _booking(record_id: int, client_id: int, when: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "yclients_record_id": record_id,
        "company_id": fields.pop("company_id", 1),
        "client_yclients_id": client_id,
        "datetime": when,
        "status": fields.pop("status", "active"),
        **fields,
    }


# --- dialog contexts ---------------------------------------------------------


def test_get_dialog_context(facade: DataLayer) -> None:
    facade.upsert_dialog_context(
        {"user_id": "u-1", "company_id": 1, "state": "booking", "data": {"step": 2}}
    )
    context = facade.get_dialog_context("u-1", 1)
    assert isinstance(context, DialogContext)
    assert (context.user_id, context.company_id, context.state) == ("u-1", 1, "booking")
    assert context.data == {"step": 2}
    assert facade.get_dialog_context("u-1") == context  # any company
    assert facade.get_dialog_context("u-1", 2) is None
    assert facade.get_dialog_context("nobody", 1) is None


# --- clients -----------------------------------------------------------------


def test_get_client_by_phone_any_written_form(facade: DataLayer) -> None:
    facade.upsert_client(_client(101, name="Анна", phone="8 (968) 648-44-88"))
    for form in ("8 (968) 648-44-88", "+7 968 648 44 88", "89686484488", "9686484488"):
        client = facade.get_client_by_phone(form, 1)
        assert isinstance(client, Client), form
        assert client.yclients_id == 101
        assert client.phone == "79686484488"
    assert facade.get_client_by_phone("9686484488") is not None  # any company
    assert facade.get_client_by_phone("9686484488", 2) is None
    assert facade.get_client_by_phone("+7 900 000 00 00", 1) is None


def test_get_client_by_id_without_company_is_not_is_null(facade: DataLayer) -> None:
    """Not to repeat: a missing company id turned into ``company_id IS NULL``."""
    facade.upsert_client(_client(101, company_id=7, name="Анна"))
    client = facade.get_client_by_id(101)
    assert client is not None
    assert client.company_id == 7
    assert facade.get_client_by_id(101, 7) == client
    assert facade.get_client_by_id("101", "7") == client  # type: ignore[arg-type]
    assert facade.get_client_by_id(101, 8) is None
    assert facade.get_client_by_id(999) is None


def test_get_client_by_id_several_companies_gives_one(facade: DataLayer) -> None:
    facade.upsert_client(_client(101, company_id=1, name="A"))
    facade.upsert_client(_client(101, company_id=2, name="B"))
    assert facade.get_client_by_id(101, 1).name == "A"  # type: ignore[union-attr]
    assert facade.get_client_by_id(101, 2).name == "B"  # type: ignore[union-attr]
    assert facade.get_client_by_id(101) in (
        facade.get_client_by_id(101, 1),
        facade.get_client_by_id(101, 2),
    )


def test_get_client_appointments_orders_and_filters(clean_db: Database, facade: DataLayer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    bookings = BookingsRepository(clean_db)
    bookings.upsert(_booking(1, 101, now - timedelta(days=3), cost=300))
    bookings.upsert(_booking(2, 101, now + timedelta(days=1), cost=100))
    bookings.upsert(_booking(3, 101, now - timedelta(days=1), cost=200, status="completed"))
    bookings.upsert(_booking(4, 101, now, company_id=2, cost=50))
    bookings.upsert(_booking(5, 202, now))

    result = facade.get_client_appointments(101, 1)
    assert all(isinstance(b, Booking) for b in result)
    assert [b.yclients_record_id for b in result] == [2, 3, 1]  # newest first
    by_cost = facade.get_client_appointments(101, 1, order_by="cost", descending=False)
    assert [b.yclients_record_id for b in by_cost] == [2, 3, 1]
    by_cost_desc = facade.get_client_appointments(101, 1, order_by="cost")
    assert [b.yclients_record_id for b in by_cost_desc] == [1, 3, 2]
    assert len(facade.get_client_appointments(101)) == 4  # any company
    assert len(facade.get_client_appointments(101, limit=2)) == 2
    assert len(facade.get_client_appointments(101, limit=0)) == 1  # clamped to 1
    assert facade.get_client_appointments(999) == []


@pytest.mark.parametrize(
    "order_by", ["staff", "datetime desc", "datetime; DROP TABLE bookings", ""]
)
def test_get_client_appointments_rejects_unknown_order(facade: DataLayer, order_by: str) -> None:
    with pytest.raises(ValidationError, match="order_by"):
        facade.get_client_appointments(101, order_by=order_by)


def test_get_upcoming_appointments(clean_db: Database, facade: DataLayer) -> None:
    now = datetime.now(UTC)
    bookings = BookingsRepository(clean_db)
    bookings.upsert(_booking(1, 101, now + timedelta(days=2)))
    bookings.upsert(_booking(2, 101, now + timedelta(hours=2)))
    bookings.upsert(_booking(3, 101, now - timedelta(hours=2)))  # past
    bookings.upsert(_booking(4, 101, now + timedelta(days=1), status="cancelled"))
    bookings.upsert(_booking(5, 101, now + timedelta(days=1), company_id=2))
    bookings.upsert(_booking(6, 202, now + timedelta(days=1)))
    upcoming = facade.get_upcoming_appointments(101, 1)
    assert [b.yclients_record_id for b in upcoming] == [2, 1]  # soonest first
    assert facade.get_upcoming_appointments(202, 2) == []


def test_search_clients_by_name(facade: DataLayer) -> None:
    facade.upsert_clients(
        [
            _client(1, name="Анна Иванова"),
            _client(2, name="Иван Петров"),
            _client(3, name="Мария"),
            _client(4, company_id=2, name="Иван Другой"),
        ]
    )
    found = facade.search_clients_by_name(1, "  иван ")
    assert all(isinstance(c, Client) for c in found)
    assert sorted(c.yclients_id for c in found) == [1, 2]
    assert len(facade.search_clients_by_name(1, "иван", limit=1)) == 1
    assert facade.search_clients_by_name(1, "Ольга") == []


def test_search_clients_by_name_treats_wildcards_literally(facade: DataLayer) -> None:
    facade.upsert_clients(
        [
            _client(1, name="Скидка 50%"),
            _client(2, name="Скидка 500"),
            _client(3, name="a_b"),
            _client(4, name="axb"),
            _client(5, name="back\\slash"),
            _client(6, name="backslash"),
        ]
    )
    assert [c.yclients_id for c in facade.search_clients_by_name(1, "50%")] == [1]
    assert [c.yclients_id for c in facade.search_clients_by_name(1, "a_b")] == [3]
    assert [c.yclients_id for c in facade.search_clients_by_name(1, "%")] == [1]
    assert [c.yclients_id for c in facade.search_clients_by_name(1, "_")] == [3]
    assert [c.yclients_id for c in facade.search_clients_by_name(1, "k\\s")] == [5]


# --- staff -------------------------------------------------------------------


def _seed_staff(clean_db: Database) -> None:
    from datalayer.repositories import StaffRepository

    staff = StaffRepository(clean_db)
    staff.upsert({"yclients_id": 5, "company_id": 1, "name": "Ольга", "is_active": True})
    staff.upsert({"yclients_id": 6, "company_id": 1, "name": "Борис", "is_active": False})
    staff.upsert({"yclients_id": 5, "company_id": 2, "name": "Другая", "is_active": True})


def test_get_staff_by_id(clean_db: Database, facade: DataLayer) -> None:
    _seed_staff(clean_db)
    member = facade.get_staff_by_id(5, 1)
    assert isinstance(member, Staff)
    assert (member.yclients_id, member.company_id, member.name) == (5, 1, "Ольга")
    assert facade.get_staff_by_id(5, 2).name == "Другая"  # type: ignore[union-attr]
    assert facade.get_staff_by_id(7, 1) is None


def test_get_staff(clean_db: Database, facade: DataLayer) -> None:
    _seed_staff(clean_db)
    active = facade.get_staff(1)
    assert [s.yclients_id for s in active] == [5]
    assert all(isinstance(s, Staff) for s in active)
    assert sorted(s.yclients_id for s in facade.get_staff(1, include_inactive=True)) == [5, 6]
    assert facade.get_staff(3) == []


def _schedule(staff_id: int, day: date, company_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "yclients_staff_id": staff_id,
        "company_id": company_id,
        "date": day,
        "is_working": fields.pop("is_working", True),
        **fields,
    }


def test_get_staff_schedule_keys_on_yclients_staff_id(facade: DataLayer) -> None:
    """Not to repeat: ``staff_id`` used for the ``yclients_staff_id`` column."""
    facade.upsert_staff_schedules([_schedule(5, DAY, staff_name="Ольга")])
    schedule = facade.get_staff_schedule(5, DAY)
    assert isinstance(schedule, StaffSchedule)
    assert (schedule.yclients_staff_id, schedule.date, schedule.company_id) == (5, DAY, 1)
    assert facade.get_staff_schedule(5, "2026-12-01", 1) == schedule
    assert facade.get_staff_schedule(5, DAY, 2) is None
    assert facade.get_staff_schedule(6, DAY) is None
    assert facade.get_staff_schedule(5, DAY + timedelta(days=1)) is None


def test_get_staff_schedules_returns_exactly_the_matching_rows(facade: DataLayer) -> None:
    days = [DAY + timedelta(days=i) for i in range(6)]
    facade.upsert_staff_schedules(
        [_schedule(5, d, is_working=i % 2 == 0) for i, d in enumerate(days)]
        + [_schedule(6, d) for d in days]
        + [_schedule(5, d, company_id=2) for d in days]
    )
    rows = facade.get_staff_schedules(
        1, staff_id=5, date_from=days[1], date_to="2026-12-05", is_working=True
    )
    assert all(isinstance(r, StaffSchedule) for r in rows)
    assert [(r.yclients_staff_id, r.date, r.is_working) for r in rows] == [
        (5, days[2], True),
        (5, days[4], True),
    ]
    assert len(facade.get_staff_schedules(1)) == 12
    assert len(facade.get_staff_schedules(1, staff_id=5)) == 6
    assert len(facade.get_staff_schedules(1, is_working=False)) == 3
    assert [r.date for r in facade.get_staff_schedules(1, staff_id=6, date_from=days[4])] == [
        days[4],
        days[5],
    ]
    assert len(facade.get_staff_schedules(1, limit=5)) == 5
    assert facade.get_staff_schedules(3) == []


def test_get_staff_schedules_rejects_an_inverted_window(facade: DataLayer) -> None:
    with pytest.raises(ValidationError, match="date_from"):
        facade.get_staff_schedules(1, date_from="2026-12-05", date_to="2026-12-01")


# --- services ----------------------------------------------------------------


def _seed_services(facade: DataLayer) -> None:
    facade.upsert_services(
        [
            {"yclients_id": 1, "company_id": 1, "title": "Стрижка", "category_id": 10},
            {"yclients_id": 2, "company_id": 1, "title": "Окрашивание", "category_id": 20},
            {"yclients_id": 3, "company_id": 1, "title": "Укладка", "category_id": 10},
            {
                "yclients_id": 4,
                "company_id": 1,
                "title": "Архив",
                "category_id": 10,
                "is_active": False,
            },
            {"yclients_id": 1, "company_id": 2, "title": "Чужая", "category_id": 10},
        ]
    )


def test_get_services(facade: DataLayer) -> None:
    _seed_services(facade)
    services = facade.get_services(1)
    assert all(isinstance(s, Service) for s in services)
    assert sorted(s.yclients_id for s in services) == [1, 2, 3]
    assert sorted(s.yclients_id for s in facade.get_services(1, include_inactive=True)) == [
        1,
        2,
        3,
        4,
    ]
    assert facade.get_services(3) == []


def test_get_service_by_id(facade: DataLayer) -> None:
    _seed_services(facade)
    service = facade.get_service_by_id(2)
    assert isinstance(service, Service)
    assert service.title == "Окрашивание"
    assert facade.get_service_by_id(1, 2).title == "Чужая"  # type: ignore[union-attr]
    assert facade.get_service_by_id(2, 2) is None
    assert facade.get_service_by_id(99) is None


def test_get_services_by_category(facade: DataLayer) -> None:
    _seed_services(facade)
    services = facade.get_services_by_category(1, 10)
    assert sorted(s.yclients_id for s in services) == [1, 3]  # active ones
    assert all(isinstance(s, Service) for s in services)
    assert facade.get_services_by_category(1, 30) == []
    assert facade.get_services_by_category(3, 10) == []


# --- companies ---------------------------------------------------------------


def test_get_company(facade: DataLayer) -> None:
    facade.upsert_company({"company_id": 1, "title": "Салон", "timezone": "Europe/Moscow"})
    company = facade.get_company(1)
    assert isinstance(company, Company)
    assert (company.company_id, company.title) == (1, "Салон")
    assert facade.get_company(2) is None
