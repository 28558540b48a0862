"""ClientsRepository: every method and its finders."""

from __future__ import annotations

import datetime as dt

from datalayer import Database
from datalayer.models import Client
from datalayer.repositories import ClientsRepository

from ._crud import walk_every_method


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        ClientsRepository(clean_db),
        Client(
            yclients_id=1,
            company_id=10,
            name="Anna",
            phone="79686484488",
            email="anna@example.org",
            last_visit_date=dt.date(2026, 1, 2),
            visit_count=2,
            tags=["vip", "new"],
            preferences={"master": 7},
        ),
        Client(yclients_id=2, company_id=10, name="Boris"),
        {"name": "Anna K.", "visit_count": 3, "tags": ["vip"]},
    )


def test_find_by_id_and_phone_any_company_is_not_is_null(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    repo.upsert(Client(yclients_id=5, company_id=10, name="Ann", phone="79000000005"))
    # company_id=None means any salon: the old fault turned it into company_id IS NULL.
    found = repo.find_by_id(5)
    assert found is not None and found.company_id == 10
    assert repo.find_by_id(5, 10) == found
    assert repo.find_by_id(5, 11) is None
    assert repo.find_by_phone("79000000005") == found
    assert repo.find_by_phone("79000000005", company_id=10) == found
    assert repo.find_by_phone("79000000005", company_id=11) is None
    assert repo.find_by_phone("79999999999") is None


def test_search_by_name_is_literal_and_scoped(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    repo.bulk_upsert(
        [
            Client(yclients_id=1, company_id=10, name="Maria Ivanova"),
            Client(yclients_id=2, company_id=10, name="MARIA 100%"),
            Client(yclients_id=3, company_id=10, name="Ivan"),
            Client(yclients_id=4, company_id=11, name="Maria Other Salon"),
        ]
    )
    assert [c.yclients_id for c in repo.search_by_name(10, "maria")] == [2, 1]
    assert [c.yclients_id for c in repo.search_by_name(10, "100%")] == [2]
    assert repo.search_by_name(10, "%") == [c for c in repo.search_by_name(10, "100%")]
    assert repo.search_by_name(10, "_") == []
    assert len(repo.search_by_name(10, "a", limit=1)) == 1


def test_two_clients_may_share_a_phone_and_the_latest_updated_is_found(
    clean_db: Database,
) -> None:
    # A parent books for a child under one phone: a sync of both must not fail.
    repo = ClientsRepository(clean_db)
    written = repo.bulk_upsert(
        [
            Client(yclients_id=31, company_id=10, name="Parent", phone="79000000031"),
            Client(yclients_id=32, company_id=10, name="Child", phone="79000000031"),
        ]
    )
    assert written == 2
    repo.upsert(Client(yclients_id=31, company_id=10, name="Parent", phone="79000000031"))
    found = repo.find_by_phone("79000000031", company_id=10)
    assert found is not None and found.yclients_id == 31
    repo.upsert(Client(yclients_id=32, company_id=10, name="Child", phone="79000000031"))
    found = repo.find_by_phone("79000000031", company_id=10)
    assert found is not None and found.yclients_id == 32


def test_a_stored_client_s_repr_shows_its_key_not_the_person(clean_db: Database) -> None:
    # A row logged as a value or passed to a reported call is shown by its repr; the
    # scrubber masks phones and e-mails in text but cannot tell a name from a word.
    stored = ClientsRepository(clean_db).upsert(
        Client(
            yclients_id=7,
            company_id=10,
            name="Zinaida Person",
            phone="79686484488",
            email="zina@example.org",
            preferences={"note": "Zinaida likes tea"},
        )
    )
    assert stored.name == "Zinaida Person"  # read back through the slot-filling rows
    text = repr(stored)
    assert "yclients_id=7" in text and "company_id=10" in text
    for private in ("Zinaida", "79686484488", "zina@example.org"):
        assert private not in text
