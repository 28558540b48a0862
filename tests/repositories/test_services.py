"""ServicesRepository: every method and its finders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from datalayer import Database, ValidationError
from datalayer.models import Service
from datalayer.repositories import ServicesRepository

from ._crud import walk_every_method


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        ServicesRepository(clean_db),
        Service(
            yclients_id=1,
            company_id=10,
            title="Haircut",
            category_id=5,
            price_min=Decimal("1000.00"),
            price_max=Decimal("1500.50"),
            duration=3600,
            weight=3,
        ),
        Service(yclients_id=2, company_id=10, title="Colour"),
        {"title": "Haircut long", "price_max": Decimal("2000.00"), "is_active": False},
    )


def test_finders(clean_db: Database) -> None:
    repo = ServicesRepository(clean_db)
    repo.bulk_upsert(
        [
            Service(yclients_id=1, company_id=10, title="B", category_id=5, weight=1),
            Service(yclients_id=2, company_id=10, title="A", category_id=5, weight=1),
            Service(yclients_id=3, company_id=10, title="C", category_id=6, weight=9),
            Service(yclients_id=4, company_id=10, title="D", category_id=5, is_active=False),
            Service(yclients_id=1, company_id=11, title="Elsewhere", category_id=5),
        ]
    )
    assert [s.yclients_id for s in repo.list_for_company(10)] == [3, 2, 1]
    assert [s.yclients_id for s in repo.list_for_company(10, include_inactive=True)] == [
        3,
        2,
        1,
        4,
    ]
    assert [s.yclients_id for s in repo.find_by_category(10, 5)] == [2, 1]
    found = repo.find_by_id(3)
    assert found is not None and found.title == "C"
    assert repo.find_by_id(1, 11) is not None
    assert repo.find_by_id(3, 11) is None


def test_price_range_is_checked(clean_db: Database) -> None:
    with pytest.raises(ValidationError):
        ServicesRepository(clean_db).upsert(
            Service(
                yclients_id=1,
                company_id=1,
                title="x",
                price_min=Decimal(5),
                price_max=Decimal(1),
            )
        )
