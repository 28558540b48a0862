"""BookingsRepository: every method and its finders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from datalayer import Database, ValidationError
from datalayer.models import Booking
from datalayer.repositories import BookingsRepository

from ._crud import walk_every_method

NOW = dt.datetime(2020, 6, 1, 12, 0, tzinfo=dt.UTC)  # in the past of the real clock


def booking(record_id: int, hours: float, **values: object) -> Booking:
    base: dict[str, object] = {"company_id": 10, "client_yclients_id": 7}
    return Booking(
        yclients_record_id=record_id,
        datetime=NOW + dt.timedelta(hours=hours),
        **{**base, **values},  # type: ignore[arg-type]
    )


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        BookingsRepository(clean_db),
        booking(1, 1, client_phone="79000000007", staff_id=3, service_ids=[1, 2], cost=Decimal(5)),
        booking(2, 2),
        {"status": "cancelled", "service_ids": [3]},
    )


def test_status_is_checked(clean_db: Database) -> None:
    with pytest.raises(ValidationError):
        BookingsRepository(clean_db).upsert(booking(1, 1, status="maybe"))


def test_finders(clean_db: Database) -> None:
    repo = BookingsRepository(clean_db)
    repo.bulk_upsert(
        [
            booking(1, -48),
            booking(2, -1, status="completed"),
            booking(3, 5),
            booking(4, 2),
            booking(5, 3, status="cancelled"),
            booking(6, 1, company_id=11),
            booking(7, 4, client_yclients_id=8, staff_id=3),
        ]
    )
    assert [b.yclients_record_id for b in repo.find_for_client(7, 10)] == [3, 5, 4, 2, 1]
    assert [b.yclients_record_id for b in repo.find_for_client(7)] == [3, 5, 4, 6, 2, 1]
    assert [b.yclients_record_id for b in repo.find_for_client(7, 10, limit=2)] == [3, 5]
    oldest_first = repo.find_for_client(7, 10, descending=False)
    assert [b.yclients_record_id for b in oldest_first] == [1, 2, 4, 5, 3]

    upcoming = repo.find_upcoming_for_client(7, 10, now=NOW)
    assert [b.yclients_record_id for b in upcoming] == [4, 3]  # active only, soonest first
    assert [b.yclients_record_id for b in repo.find_upcoming_for_client(7, now=NOW)] == [6, 4, 3]
    assert repo.find_upcoming_for_client(7, 10) == []  # the real clock: all of them are past

    window = repo.find_in_range(10, NOW, NOW + dt.timedelta(hours=4))
    assert [b.yclients_record_id for b in window] == [4, 5]
    day = repo.find_in_range(10, NOW, NOW + dt.timedelta(days=1), staff_id=3)
    assert [b.yclients_record_id for b in day] == [7]


def test_repr_leaves_out_the_client_phone() -> None:
    booking = Booking(
        yclients_record_id=1,
        company_id=10,
        datetime=dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC),
        client_phone="79686484488",
    )
    assert "yclients_record_id=1" in repr(booking)
    assert "79686484488" not in repr(booking)
