"""One walk through every generic repository method, shared by the per-table tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from datalayer.repositories import BaseRepository


def key_of(repo: BaseRepository[Any], row: Any) -> dict[str, Any]:
    return {column: getattr(row, column) for column in repo.table.key}


def same_fields(stored: Any, expected: Any) -> None:
    """Every field of ``expected`` but the server-managed ones equals ``stored``'s."""
    for f in dataclasses.fields(expected):
        if f.name in ("created_at", "updated_at") or getattr(expected, f.name) is None:
            continue
        assert getattr(stored, f.name) == getattr(expected, f.name), f.name


def walk_every_method(
    repo: BaseRepository[Any], first: Any, second: Any, change: Mapping[str, Any]
) -> None:
    """upsert, upsert again (update), find_one, find_many, count, bulk_upsert, delete.

    ``first`` and ``second`` are model instances with different keys; ``change`` is
    a partial mapping of non-key columns applied to ``first`` as an update.
    """
    stored = repo.upsert(first)
    assert isinstance(stored, repo.row_type)
    same_fields(stored, first)
    assert stored.created_at is not None and stored.updated_at is not None

    # A mapping: the full row with ``change`` on top (INSERT checks NOT NULL columns
    # before it meets the conflict, so a partial mapping must keep the required ones).
    as_mapping = {f.name: getattr(first, f.name) for f in dataclasses.fields(first)}
    updated = repo.upsert({**as_mapping, **change})
    for column, value in change.items():
        assert getattr(updated, column) == value
    assert updated.created_at == stored.created_at
    assert updated.updated_at >= stored.updated_at
    assert repo.count() == 1

    assert repo.find_one(key_of(repo, first)) == updated
    assert repo.find_one(key_of(repo, second)) is None

    assert repo.bulk_upsert([first, second]) == 2
    assert repo.count() == 2
    found = repo.find_many(order_by=list(repo.table.key))
    assert len(found) == 2
    assert {tuple(key_of(repo, r).values()) for r in found} == {
        tuple(key_of(repo, first).values()),
        tuple(key_of(repo, second).values()),
    }
    same_fields(repo.find_one(key_of(repo, first)), first)  # bulk wrote first again

    assert repo.delete(key_of(repo, second)) == 1
    assert repo.delete(key_of(repo, second)) == 0
    assert repo.count() == 1
