"""CompaniesRepository: every method and its finders."""

from __future__ import annotations

from datalayer import Database
from datalayer.models import Company
from datalayer.repositories import CompaniesRepository

from ._crud import walk_every_method


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        CompaniesRepository(clean_db),
        Company(company_id=1, title="Salon", timezone="Europe/Moscow", raw_data={"a": [1]}),
        Company(company_id=2, title="Other"),
        {"title": "Salon renamed", "is_active": False},
    )


def test_finders(clean_db: Database) -> None:
    repo = CompaniesRepository(clean_db)
    repo.bulk_upsert(
        [
            Company(company_id=3, title="C"),
            Company(company_id=1, title="A"),
            Company(company_id=2, title="B", is_active=False),
        ]
    )
    found = repo.find_by_id(1)
    assert found is not None and found.title == "A"
    assert repo.find_by_id(99) is None
    assert [c.company_id for c in repo.list_active()] == [1, 3]
