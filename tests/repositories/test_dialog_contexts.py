"""DialogContextsRepository: every method and its finders."""

from __future__ import annotations

import datetime as dt

from datalayer import Database
from datalayer.models import DialogContext
from datalayer.repositories import DialogContextsRepository

from ._crud import walk_every_method

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_every_method(clean_db: Database) -> None:
    walk_every_method(
        DialogContextsRepository(clean_db),
        DialogContext(
            user_id="79000000001@c.us",
            company_id=10,
            state="booking",
            data={"service": 5, "nested": {"k": [1, 2]}},
            messages=[{"role": "user", "text": "hi"}],
            last_activity=T0,
        ),
        DialogContext(user_id="79000000002@c.us", company_id=10),
        {"state": "done", "data": {"service": 6}},
    )


def test_last_activity_defaults_to_now(clean_db: Database) -> None:
    repo = DialogContextsRepository(clean_db)
    stored = repo.upsert(DialogContext(user_id="u", company_id=1))
    assert stored.last_activity is not None
    assert repo.bulk_upsert([DialogContext(user_id="v", company_id=1)]) == 1
    bulk = repo.find_for_user("v")
    assert bulk is not None and bulk.last_activity is not None


def test_finders(clean_db: Database) -> None:
    repo = DialogContextsRepository(clean_db)
    repo.bulk_upsert(
        [
            DialogContext(user_id="u", company_id=10, last_activity=T0),
            DialogContext(user_id="u", company_id=11, last_activity=T0 + dt.timedelta(hours=1)),
            DialogContext(user_id="w", company_id=10, last_activity=T0 - dt.timedelta(days=30)),
        ]
    )
    latest = repo.find_for_user("u")
    assert latest is not None and latest.company_id == 11  # any salon: the most recent
    here = repo.find_for_user("u", 10)
    assert here is not None and here.company_id == 10
    assert repo.find_for_user("nobody") is None
    stale = repo.find_inactive_since(T0 - dt.timedelta(days=1))
    assert [(c.user_id, c.company_id) for c in stale] == [("w", 10)]


def test_repr_leaves_out_the_conversation() -> None:
    context = DialogContext(
        user_id="u-1", company_id=10, data={"name": "Zinaida"}, messages=["hi, I'm Zinaida"]
    )
    assert "u-1" in repr(context)
    assert "Zinaida" not in repr(context)
