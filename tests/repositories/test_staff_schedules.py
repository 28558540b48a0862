"""StaffSchedulesRepository: every method and its finders."""

from __future__ import annotations

import datetime as dt

import pytest

from datalayer import Database, ValidationError
from datalayer.models import StaffSchedule
from datalayer.repositories import StaffSchedulesRepository

from ._crud import walk_every_method

DAY = dt.date(2026, 12, 1)


def schedule(staff_id: int, day: dt.date, company_id: int = 10, **values: object) -> StaffSchedule:
    return StaffSchedule(
        yclients_staff_id=staff_id,
        company_id=company_id,
        date=day,
        **values,  # type: ignore[arg-type]
    )


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        StaffSchedulesRepository(clean_db),
        schedule(1, DAY, staff_name="Olga", work_start=dt.time(9), work_end=dt.time(18)),
        schedule(1, DAY + dt.timedelta(days=1)),
        {"is_working": False, "work_start": None},
    )


def test_the_staff_column_is_yclients_staff_id(clean_db: Database) -> None:
    repo = StaffSchedulesRepository(clean_db)
    with pytest.raises(ValidationError):
        repo.find_many({"staff_id": 1})  # the old fault: a column that does not exist


def test_finders(clean_db: Database) -> None:
    repo = StaffSchedulesRepository(clean_db)
    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    repo.bulk_upsert(
        [schedule(1, d, is_working=i % 2 == 0) for i, d in enumerate(days)]
        + [schedule(2, d) for d in days]
        + [schedule(1, DAY, company_id=11)]
    )
    one = repo.find_for_staff_on(1, DAY, 10)
    assert one is not None and one.company_id == 10
    assert repo.find_for_staff_on(1, DAY, 12) is None
    assert repo.find_for_staff_on(2, DAY) is not None  # any salon

    in_range = repo.find_in_range(10, date_from=days[1], date_to=days[3])
    assert [(s.date, s.yclients_staff_id) for s in in_range] == [
        (d, staff) for d in days[1:4] for staff in (1, 2)
    ]
    assert [s.date for s in repo.find_in_range(10, staff_id=1, is_working=True)] == [
        days[0],
        days[2],
        days[4],
    ]
    assert len(repo.find_in_range(10, limit=3)) == 3
    assert len(repo.find_in_range(10)) == 10


def test_find_for_staff_on_any_company_takes_the_latest_updated(clean_db: Database) -> None:
    repo = StaffSchedulesRepository(clean_db)
    day = dt.date(2026, 3, 2)
    repo.upsert(StaffSchedule(yclients_staff_id=7, company_id=1, date=day, staff_name="a"))
    repo.upsert(StaffSchedule(yclients_staff_id=7, company_id=2, date=day, staff_name="b"))
    found = repo.find_for_staff_on(7, day)
    assert found is not None and found.company_id == 2
    repo.upsert(StaffSchedule(yclients_staff_id=7, company_id=1, date=day, staff_name="a2"))
    found = repo.find_for_staff_on(7, day)
    assert found is not None and (found.company_id, found.staff_name) == (1, "a2")
