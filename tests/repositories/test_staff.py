"""StaffRepository: every method and its finders."""

from __future__ import annotations

from datalayer import Database
from datalayer.models import Staff
from datalayer.repositories import StaffRepository

from ._crud import walk_every_method


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        StaffRepository(clean_db),
        Staff(yclients_id=1, company_id=10, name="Olga", specialization="colorist", rating=4.5),
        Staff(yclients_id=2, company_id=10, name="Irina"),
        {"rating": 4.9, "is_active": False},
    )


def test_finders(clean_db: Database) -> None:
    repo = StaffRepository(clean_db)
    repo.bulk_upsert(
        [
            Staff(yclients_id=1, company_id=10, name="Olga"),
            Staff(yclients_id=2, company_id=10, name="Irina"),
            Staff(yclients_id=3, company_id=10, name="Anna", is_active=False),
            Staff(yclients_id=1, company_id=11, name="Other salon"),
        ]
    )
    assert [s.name for s in repo.list_for_company(10)] == ["Irina", "Olga"]
    assert [s.name for s in repo.list_for_company(10, include_inactive=True)] == [
        "Anna",
        "Irina",
        "Olga",
    ]
    found = repo.find_by_id(2, 10)
    assert found is not None and found.name == "Irina"
    assert repo.find_by_id(2, 11) is None
    assert repo.find_by_id(2) == found
