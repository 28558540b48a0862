"""The garbage collector pause around bulk batches: on inside, restored after, never
across the caller's own iterator."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from datalayer._collector import collector_paused
from datalayer.errors import ValidationError
from datalayer.models import Client
from datalayer.repositories import ClientsRepository, _sql
from datalayer.validation import validate_payloads

KEYS = ClientsRepository.table.key


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_restored_after_even_on_error() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def payloads(states: list[bool], count: int = 3) -> Iterator[dict[str, Any]]:
    for i in range(1, count + 1):
        states.append(gc.isenabled())  # what the caller's own code runs with
        yield {"yclients_id": i, "company_id": 1}


def test_validate_payloads_pauses_only_its_own_work() -> None:
    states: list[bool] = []
    inside: list[bool] = []

    def observe(value: int) -> int:
        inside.append(gc.isenabled())
        return value

    rows = validate_payloads(
        payloads(states), Client, keys=KEYS, normalizers={"yclients_id": observe}
    )
    assert len(rows) == 3 and inside == [False, False, False]
    assert states == [True, True, True] and gc.isenabled()
    with pytest.raises(ValidationError):
        validate_payloads([{"yclients_id": 1}], Client, keys=KEYS)
    assert gc.isenabled()


class Observed(dict[str, Any]):
    """A row that notes the collector's state whenever its keys are read."""

    seen: list[bool] = []

    def keys(self) -> Any:
        Observed.seen.append(gc.isenabled())
        return super().keys()


def test_bulk_rows_pauses_only_its_own_work() -> None:
    states: list[bool] = []
    _, records = _sql.bulk_rows(ClientsRepository.table, payloads(states))
    assert len(records) == 3 and states == [True, True, True] and gc.isenabled()
    Observed.seen.clear()
    rows = [Observed(yclients_id=1, company_id=1), Observed(yclients_id=2, company_id=1)]
    _sql.bulk_rows(ClientsRepository.table, rows)
    assert Observed.seen and not any(Observed.seen) and gc.isenabled()
    with pytest.raises(ValidationError):
        _sql.bulk_rows(ClientsRepository.table, [{"yclients_id": 1, "company_id": 1, "x": 2}])
    assert gc.isenabled()
