"""Hostile input to the repositories (hypothesis).

Filter dicts, column names, operators, order keys and values (unicode, quotes,
semicolons, ``--``, NUL bytes, very long strings): either a
``ValidationError`` before any SQL, or a correct parameterised query; never a
server-side syntax error, never a change outside the intended rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from datalayer import Database
from datalayer.errors import DataLayerError, ValidationError
from datalayer.repositories import ClientsRepository

from .strategies import (
    OPERATORS,
    any_scalar,
    hostile_filters,
    hostile_identifier,
    hostile_text,
    order_keys,
)

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Server answers that mean the query itself was malformed: never acceptable.
MALFORMED = {
    "42601",  # syntax_error
    "42703",  # undefined_column
    "42P01",  # undefined_table
    "42P02",  # undefined_parameter
    "42P18",  # indeterminate_datatype
    "08P01",  # protocol_violation
}

COMPANIES = (1, 2, 3)
SEED_NAMES = (
    "Анна",
    "O'Brien",
    'Say "hi"',
    "semi;colon",
    "dash -- dash",
    "100% real_name",
    "back\\slash",
    "😀 emoji",
    "Robert'); DROP TABLE clients;--",
    "",
    " padded ",
    "x" * 300,
)


def seed_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(1, 25):
        rows.append(
            {
                "yclients_id": i,
                "company_id": COMPANIES[i % 3],
                "name": SEED_NAMES[i % len(SEED_NAMES)] if i % 7 else None,
                "phone": f"7968{i:07d}" if i % 5 else None,
                "email": f"c{i}@example.com" if i % 4 else None,
                "last_visit_date": (
                    dt.date(2024, 1, 1) + dt.timedelta(days=i * 11) if i % 3 else None
                ),
                "visit_count": i % 6,
                "tags": ["vip"] if i % 2 else [],
                "preferences": {"n": i},
            }
        )
    return rows


@pytest.fixture(scope="module")
def repo_db(cluster_url: str) -> Iterator[Database]:
    from .conftest import truncate_domain

    truncate_domain(cluster_url)
    with Database(cluster_url) as db:
        ClientsRepository(db).bulk_upsert(seed_rows())
        yield db
    truncate_domain(cluster_url)


@pytest.fixture
def clients(repo_db: Database) -> ClientsRepository:
    return ClientsRepository(repo_db)


class SqlCounter:
    """Counts how often the repository asked the database for a connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls = 0
        self._original: Callable[[], AbstractContextManager[psycopg.Connection[Any]]] = (
            db.connection
        )

    def __enter__(self) -> SqlCounter:
        def counting() -> AbstractContextManager[psycopg.Connection[Any]]:
            self.calls += 1
            return self._original()

        self.db.connection = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.db.connection  # back to the class's method


COLUMNS = dict(ClientsRepository.table.columns)
SCALAR_COLUMNS = {c: t for c, t in COLUMNS.items() if t in {"bigint", "integer", "text", "date"}}


def typed_values(pg_type: str) -> st.SearchStrategy[Any]:
    """Values of the column's type, biased towards the seeded ones so filters match rows."""
    if pg_type == "bigint":
        return st.one_of(
            st.integers(min_value=0, max_value=30),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
        )
    if pg_type == "integer":
        return st.one_of(
            st.integers(min_value=0, max_value=7),
            st.integers(min_value=-(2**31), max_value=2**31 - 1),
        )
    if pg_type == "date":
        return st.dates(min_value=dt.date(2023, 6, 1), max_value=dt.date(2025, 6, 1))
    return st.one_of(st.sampled_from(SEED_NAMES), hostile_text())


@st.composite
def typed_filters(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed filters over the scalar columns, values of the right type."""
    names = draw(st.lists(st.sampled_from(sorted(SCALAR_COLUMNS)), unique=True, max_size=3))
    result: dict[str, Any] = {}
    for name in names:
        values = typed_values(SCALAR_COLUMNS[name])
        op = draw(st.sampled_from([None, "null", *sorted(OPERATORS)]))
        if op is None:
            result[name] = draw(values)
        elif op == "null":
            result[name] = None
        elif op in ("in", "not_in"):
            result[name] = {op: draw(st.lists(values, max_size=4))}
        elif op in ("like", "ilike"):
            if SCALAR_COLUMNS[name] != "text":
                result[name] = draw(values)
            else:
                patterns = st.one_of(hostile_text(), st.sampled_from(["%", "_%", "%'%"]))
                result[name] = {op: draw(patterns)}
        else:
            result[name] = {op: draw(values)}
    return result


def snapshot(conn: psycopg.Connection[Any]) -> dict[tuple[int, int], dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM clients").fetchall()
    return {(r["yclients_id"], r["company_id"]): r for r in rows}


def _matches(value: Any, op: str, arg: Any) -> bool | None:
    """SQL semantics of one condition for the oracle; None when it cannot tell."""
    if op == "null":
        return value is None
    if op == "eq":
        return None if value is None else bool(value == arg)
    if op == "ne":  # IS DISTINCT FROM
        return bool(value != arg)
    if op == "in":
        return False if value is None else bool(value in arg)
    if op == "not_in":
        if not arg:
            return True
        return False if value is None else bool(value not in arg)
    if op in ("gt", "gte", "lt", "lte") and isinstance(arg, int | dt.date):
        if value is None:
            return False
        return bool(
            {"gt": value > arg, "gte": value >= arg, "lt": value < arg, "lte": value <= arg}[op]
        )
    return None  # text ordering depends on collation, LIKE on its escapes: no oracle


Key = tuple[int, int]


def oracle(rows: Mapping[Key, Mapping[str, Any]], filters: Mapping[str, Any]) -> set[Key] | None:
    """The keys a filter must match, computed in Python; None when it cannot tell."""
    conditions: list[tuple[str, str, Any]] = []
    for column, spec in filters.items():
        if spec is None:
            conditions.append((column, "null", None))
        elif isinstance(spec, Mapping):
            conditions.extend((column, op, arg) for op, arg in spec.items())
        else:
            conditions.append((column, "eq", spec))
    matched: set[tuple[int, int]] = set()
    for key, row in rows.items():
        verdicts = [_matches(row[c], op, arg) for c, op, arg in conditions]
        if any(v is None for v in verdicts):
            return None
        if all(verdicts):
            matched.add(key)
    return matched


def roll_back() -> None:
    """Leave ``db.transaction()`` rolled back, without an error (psycopg's Rollback)."""
    raise psycopg.Rollback()


def check_error(exc: DataLayerError) -> None:
    assert exc.sqlstate not in MALFORMED, f"malformed SQL reached the server: {exc!r}"


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _texts(item)


def check_refusal(exc: ValidationError, filters: dict[str, Any]) -> None:
    """Typed filters are refused only for a NUL in a text value or a LIKE pattern."""
    check_error(exc)
    assert any(
        (isinstance(condition, dict) and {"like", "ilike"} & condition.keys())
        or any("\x00" in text for text in _texts(condition))
        for condition in filters.values()
    ), f"well-typed filters refused: {exc!r}"


@PROPERTY
@given(filters=typed_filters(), order=st.sampled_from(sorted(COLUMNS)), descending=st.booleans())
def test_typed_filters_run_as_correct_parameterised_queries(
    clients: ClientsRepository, filters: dict[str, Any], order: str, descending: bool
) -> None:
    try:
        found = clients.find_many(filters, order_by=order, descending=descending, limit=1000)
        counted = clients.count(filters)
    except ValidationError as exc:
        # Values the server refuses as data (NUL in text, bad LIKE escape) are the
        # caller's: a ValidationError, never a malformed statement.
        check_refusal(exc, filters)
        return
    keys = {(row.yclients_id, row.company_id) for row in found}
    assert counted == len(found) == len(keys)
    with psycopg.connect(str(clients.db.pool.conninfo), autocommit=True) as conn:
        expected = oracle(snapshot(conn), filters)
    if expected is not None:
        assert keys == expected


@PROPERTY
@given(filters=typed_filters())
def test_delete_changes_exactly_the_matching_rows(
    clients: ClientsRepository, filters: dict[str, Any]
) -> None:
    if not filters:
        with pytest.raises(ValidationError):
            clients.delete(filters)
        return
    db = clients.db
    try:
        with db.transaction() as conn:
            before = snapshot(conn)
            intended = {(r.yclients_id, r.company_id) for r in clients.find_many(filters)}
            deleted = clients.delete(filters)
            after = snapshot(conn)
            roll_back()  # leave the seed for the next example
    except ValidationError as exc:
        check_refusal(exc, filters)
        return
    expected = oracle(before, filters)
    if expected is not None:
        assert intended == expected
    assert deleted == len(intended)
    assert set(after) == set(before) - intended
    # Rows outside the filter are untouched, value for value.
    assert all(after[key] == before[key] for key in after)


@PROPERTY
@given(
    name=hostile_text(),
    email=hostile_text(),
    tags=st.lists(hostile_text(max_size=20), max_size=4),
    target=st.integers(min_value=1, max_value=24),
)
def test_upsert_stores_hostile_text_exactly_and_touches_one_row(
    clients: ClientsRepository, name: str, email: str, tags: list[str], target: int
) -> None:
    db = clients.db
    key = (target, COMPANIES[target % 3])
    row = {"yclients_id": key[0], "company_id": key[1], "name": name, "email": email, "tags": tags}
    has_nul = any("\x00" in text for text in (name, email, *tags))
    try:
        with db.transaction() as conn:
            before = snapshot(conn)
            stored = clients.upsert(row)
            after = snapshot(conn)
            roll_back()
    except ValidationError as exc:
        check_error(exc)
        assert has_nul, f"refused without a NUL: {exc!r}"
        return
    assert not has_nul, "a NUL byte was stored"
    assert (stored.name, stored.email, stored.tags) == (name, email, tags)
    assert (after[key]["name"], after[key]["email"], after[key]["tags"]) == (name, email, tags)
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }


@PROPERTY
@given(filters=hostile_filters(COLUMNS))
def test_unknown_names_and_operators_are_refused_before_any_sql(
    clients: ClientsRepository, filters: Any
) -> None:
    with SqlCounter(clients.db) as counter:
        for call in (
            lambda: clients.find_many(filters),
            lambda: clients.find_one(filters),
            lambda: clients.count(filters),
            lambda: clients.delete(filters),
        ):
            with pytest.raises(ValidationError):
                call()
    assert counter.calls == 0


@PROPERTY
@given(order=order_keys(sorted(COLUMNS)))
def test_order_keys_are_checked_before_any_sql(clients: ClientsRepository, order: Any) -> None:
    names = [order] if isinstance(order, str) else order
    valid = isinstance(names, list) and all(isinstance(n, str) and n in COLUMNS for n in names)
    with SqlCounter(clients.db) as counter:
        try:
            clients.find_many({}, order_by=order, limit=3)
        except ValidationError:
            assert not valid
            assert counter.calls == 0
            return
    assert valid


@PROPERTY
@given(
    column=hostile_identifier(sorted(COLUMNS)),  # never a real column: those are stored
    value=hostile_text(),
)
def test_upsert_with_hostile_column_names_is_refused_before_any_sql(
    clients: ClientsRepository, column: str, value: str
) -> None:
    assert column not in COLUMNS
    row = {"yclients_id": 1, "company_id": COMPANIES[1], column: value}
    with SqlCounter(clients.db) as counter, pytest.raises(ValidationError):
        clients.upsert(row)
    with SqlCounter(clients.db) as counter2, pytest.raises(ValidationError):
        clients.bulk_upsert([row])
    assert counter.calls == counter2.calls == 0


# What the server may answer a well-built query whose value has the wrong type: a data
# exception (class 22), or a type it cannot compare or coerce. Never a syntax error.
TYPE_REFUSALS = {"42804", "42846", "42883"}  # datatype_mismatch, cannot_coerce, undefined_function


def test_any_value_for_any_column_never_builds_malformed_sql(clients: ClientsRepository) -> None:
    """Values of the wrong type may be refused by the server, as data (the caller's
    ``ValidationError``: 22xxx, or 42804 / 42846 / 42883 for a type the column or operator
    does not take), never as syntax and never as an internal error.

    The outcomes are counted in this test (and printed in the terminal summary):
    a run in which no query ran would prove nothing about the SQL.
    """
    from .conftest import record_figure

    outcomes: Counter[str] = Counter()

    @PROPERTY
    @given(
        column=st.sampled_from(sorted(COLUMNS)),
        op=st.sampled_from(sorted(OPERATORS)),
        value=st.one_of(any_scalar(), st.lists(any_scalar(), max_size=3)),
    )
    def check(column: str, op: str, value: Any) -> None:
        try:
            clients.find_many({column: {op: value}}, limit=5)
            outcome = "ok"
        except ValidationError as exc:  # before any SQL (None), or the server refused the value
            check_error(exc)
            assert (
                exc.sqlstate is None
                or exc.sqlstate.startswith("22")
                or exc.sqlstate in TYPE_REFUSALS
            ), repr(exc)
            outcome = f"ValidationError {exc.sqlstate}"
        except DataLayerError as exc:
            check_error(exc)
            raise AssertionError(f"a value of the wrong type was not invalid: {exc!r}") from exc
        outcomes[outcome] += 1

    check()
    record_figure(
        "repository filters with any value type (outcome: count)",
        ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
    )
    assert outcomes["ok"] > 0, f"no query ran: {dict(outcomes)}"
    assert sum(outcomes.values()) > outcomes["ok"], "no wrong-typed value was tried"
