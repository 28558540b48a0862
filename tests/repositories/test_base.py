"""BaseRepository through the clients table: filters, paging, writes, bulk, no-SQL refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from psycopg import sql

from datalayer import ConflictError, Database, TransientError, ValidationError
from datalayer.models import Client, StaffSchedule
from datalayer.repositories import (
    BaseRepository,
    BookingsRepository,
    ClientsRepository,
    CompaniesRepository,
    DialogContextsRepository,
    ServicesRepository,
    StaffRepository,
    StaffSchedulesRepository,
    _sql,
)
from datalayer.repositories._rows import _slot_setters
from datalayer.repositories._rows import model_rows as _model_rows

from .conftest import ServerActivity

ALL_REPOSITORIES: list[type[BaseRepository[Any]]] = [
    CompaniesRepository,
    ClientsRepository,
    ServicesRepository,
    StaffRepository,
    StaffSchedulesRepository,
    BookingsRepository,
    DialogContextsRepository,
]


def client(yclients_id: int, **values: Any) -> Client:
    base: dict[str, Any] = {"company_id": 1, "name": f"client {yclients_id}"}
    return Client(yclients_id=yclients_id, **{**base, **values})


@pytest.fixture
def clients(clean_db: Database) -> ClientsRepository:
    repo = ClientsRepository(clean_db)
    repo.bulk_upsert(
        [
            client(1, name="Anna", phone="79000000001", visit_count=1, email=None),
            client(2, name="Boris", phone="79000000002", visit_count=2, email="b@x.org"),
            client(3, name="anna_maria", phone=None, visit_count=3, email="a@x.org"),
            client(4, name="Dmitry", phone="79000000004", visit_count=4, company_id=2),
        ]
    )
    return repo


def ids(rows: list[Client]) -> list[int]:
    return [r.yclients_id for r in rows]


# -- filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"visit_count": 2}, [2]),
        ({"visit_count": {"eq": 2}}, [2]),
        ({"visit_count": {"ne": 2}}, [1, 3, 4]),
        ({"email": {"ne": "b@x.org"}}, [1, 3, 4]),  # NULL counts as "not equal"
        ({"visit_count": {"gt": 2}}, [3, 4]),
        ({"visit_count": {"gte": 2}}, [2, 3, 4]),
        ({"visit_count": {"lt": 2}}, [1]),
        ({"visit_count": {"lte": 2}}, [1, 2]),
        ({"visit_count": {"gte": 2, "lt": 4}}, [2, 3]),
        ({"yclients_id": {"in": [1, 3, 99]}}, [1, 3]),
        ({"yclients_id": {"not_in": [1, 3]}}, [2, 4]),
        ({"yclients_id": {"not_in": []}}, [1, 2, 3, 4]),
        ({"name": {"like": "Ann%"}}, [1]),
        ({"name": {"ilike": "ann%"}}, [1, 3]),
        ({"name": {"ilike": "%" + _sql.like_escape("_") + "%"}}, [3]),
        ({"email": None}, [1, 4]),
        ({"email": {"eq": None}}, [1, 4]),
        ({"email": {"ne": None}}, [2, 3]),
        ({"company_id": 1, "phone": None}, [3]),
        ({"tags": []}, [1, 2, 3, 4]),
        ({}, [1, 2, 3, 4]),
        (None, [1, 2, 3, 4]),
    ],
)
def test_every_filter_operator(
    clients: ClientsRepository, filters: dict[str, Any] | None, expected: list[int]
) -> None:
    assert ids(clients.find_many(filters, order_by="yclients_id")) == expected
    assert clients.count(filters) == len(expected)


@pytest.mark.sync_only
def test_empty_in_list_is_answered_without_a_round_trip(
    clean_db: Database, recording_db: tuple[Database, list[str]]
) -> None:
    db, log = recording_db
    repo = ClientsRepository(db)
    empty = {"yclients_id": {"in": []}}
    assert repo.find_many(empty) == []
    assert repo.find_one(empty) is None
    assert repo.count(empty) == 0
    assert repo.delete(empty) == 0
    assert log == []
    assert repo.count({"yclients_id": {"in": [1]}}) == 0  # the recorder does see SQL
    assert len(log) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.find_many({"staff_id": 1}),  # the old column-name fault
        lambda r: r.find_one({"name; DROP TABLE clients": 1}),
        lambda r: r.count({"visit_count": {"between": [1, 2]}}),
        lambda r: r.find_many({"visit_count": {}}),
        lambda r: r.find_many({"visit_count": {"gt": None}}),
        lambda r: r.find_many({"visit_count": {"in": 5}}),
        lambda r: r.find_many({"name": {"like": 5}}),
        lambda r: r.find_many({"yclients_id": {"in": []}, "nope": 1}),
        lambda r: r.find_many(order_by="updated"),
        lambda r: r.find_many(order_by=["name", "name DESC"]),
        lambda r: r.find_many(order_by="--name"),
        lambda r: r.find_many(order_by="-"),
        lambda r: r.find_many(limit=-1),
        lambda r: r.find_many(limit=True),
        lambda r: r.find_many(offset="1"),
        lambda r: r.find_many(["name"]),
        lambda r: r.upsert({"yclients_id": 1, "company_id": 1, "nmae": "typo"}),
        lambda r: r.upsert({"yclients_id": 1}),
        lambda r: r.upsert(42),
        lambda r: r.bulk_upsert([{"yclients_id": 1, "company_id": 1}, {"yclients_id": 2}]),
        lambda r: r.bulk_upsert([{"yclients_id": 1, "company_id": 1, "bad": 1}]),
        lambda r: r.delete({}),
        lambda r: r.delete({"ghost": 1}),
    ],
)
def test_bad_column_operator_or_key_sends_no_sql(
    watched_db: tuple[Database, ServerActivity], call: Any
) -> None:
    """Checked at the server: no statement on the open connection, and no new one."""
    db, server = watched_db
    before = server.snapshot()
    assert len(before) == 1  # the watch sees the pool's open connection
    with pytest.raises(ValidationError):
        call(ClientsRepository(db))
    assert server.snapshot() == before


def test_identifiers_are_quoted_and_values_bound() -> None:
    table = ClientsRepository.table
    query = _sql.build_select(
        table, {"name": "x'; DROP TABLE clients; --", "visit_count": {"in": [1, 2]}}
    )
    text = query.statement.as_string(None)
    assert '"name" = %s::text' in text
    assert '"visit_count" = ANY(%s::integer[])' in text
    assert "DROP" not in text
    assert query.params == ["x'; DROP TABLE clients; --", [1, 2]]


def test_the_builders_say_when_a_query_matches_nothing() -> None:
    # The pure builders know it, so any executor (sync or async) can skip the round trip.
    table = ClientsRepository.table
    for build in (_sql.build_select, _sql.build_count, _sql.build_delete):
        assert build(table, {"name": "a", "yclients_id": {"in": []}}).matches_nothing
        assert not build(table, {"yclients_id": {"in": [1]}}).matches_nothing
        assert not build(table, {"yclients_id": {"not_in": []}}).matches_nothing
    assert not _sql.build_select(table).matches_nothing


def test_builders_cache_statements_by_shape_not_values() -> None:
    table = ClientsRepository.table
    a = _sql.build_select(table, {"name": "a"}, limit=1)
    b = _sql.build_select(table, {"name": "b"}, limit=1)
    assert a.statement is b.statement
    assert (a.params, b.params) == (["a", 1], ["b", 1])


def test_a_bad_value_type_is_the_callers_error(clients: ClientsRepository) -> None:
    with pytest.raises(ValidationError) as info:
        clients.find_many({"company_id": "not a number"})
    assert info.value.sqlstate == "22P02"


@pytest.mark.parametrize(
    ("filters", "sqlstate"),
    [
        ({"visit_count": {"gt": "abc"}}, "22P02"),  # invalid text representation
        ({"last_visit_date": {"eq": 5}}, "42846"),  # cannot cast smallint to date
        ({"tags": 5}, "42846"),  # cannot cast smallint to text[]
        ({"visit_count": {"gt": [1]}}, "42846"),  # cannot cast smallint[] to integer
        ({"visit_count": {"like": "1%"}}, "42883"),  # no operator integer ~~ unknown
        ({"preferences": {"ilike": "x"}}, "42883"),  # no operator jsonb ~~* jsonb
    ],
    ids=lambda v: str(v),
)
def test_a_filter_value_of_the_wrong_type_is_invalid(
    clients: ClientsRepository, filters: dict[str, Any], sqlstate: str
) -> None:
    """The server refuses the value's type; that is the caller's input, not a bug."""
    with pytest.raises(ValidationError) as info:
        clients.find_many(filters)
    assert info.value.sqlstate == sqlstate
    assert info.value.kind == "invalid"
    assert clients.count() == 4  # the connection is still good


@pytest.mark.parametrize(
    "values",
    [{"visit_count": [1, 2]}, {"tags": 5}, {"last_visit_date": 5}],
    ids=lambda v: next(iter(v)),
)
def test_a_written_value_of_the_wrong_type_is_invalid(
    clients: ClientsRepository, values: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        clients.upsert({"yclients_id": 50, "company_id": 1, **values})
    assert info.value.sqlstate == "42804"  # column is of type X but expression is of type Y
    assert clients.count() == 4


def test_a_write_refused_as_read_only_is_transient(clients: ClientsRepository) -> None:
    """25006 means the server stopped being a primary (after a failover): an outage."""
    with pytest.raises(TransientError) as info, clients.db.transaction() as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        clients.upsert(client(51))
    assert info.value.sqlstate == "25006"
    assert clients.count() == 4


# -- ordering and paging -----------------------------------------------------------------


def test_order_limit_offset(clients: ClientsRepository) -> None:
    assert ids(clients.find_many(order_by="visit_count", descending=True)) == [4, 3, 2, 1]
    assert ids(clients.find_many(order_by=["company_id", "name"])) == [1, 2, 3, 4]
    assert ids(clients.find_many(order_by=["company_id", "-visit_count"])) == [3, 2, 1, 4]
    flipped = clients.find_many(order_by=["company_id", "-visit_count"], descending=True)
    assert ids(flipped) == [4, 1, 2, 3]
    assert ids(clients.find_many(order_by="yclients_id", limit=2, offset=1)) == [2, 3]
    assert ids(clients.find_many(order_by="yclients_id", limit=0)) == []
    assert clients.find_one({"company_id": 1}) is not None


def test_rows_are_typed_frozen_models(clients: ClientsRepository) -> None:
    row = clients.find_one({"yclients_id": 1})
    assert isinstance(row, Client)
    assert row.tags == [] and row.preferences == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "x"  # type: ignore[misc]


# -- upsert -----------------------------------------------------------------------------


def test_upsert_twice_updates_and_returns_the_stored_row(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    first = repo.upsert(client(10, phone="79000000010", tags=["vip"], preferences={"a": 1}))
    assert first.tags == ["vip"] and first.preferences == {"a": 1}
    second = repo.upsert(client(10, phone="79000000010", name="Renamed", visit_count=7))
    assert (second.name, second.visit_count, second.tags) == ("Renamed", 7, [])
    assert second.created_at == first.created_at
    assert second.updated_at is not None and first.updated_at is not None
    assert second.updated_at >= first.updated_at
    assert repo.count() == 1


def test_upsert_of_a_mapping_writes_only_its_columns(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    repo.upsert(client(11, email="keep@x.org", visit_count=3))
    stored = repo.upsert({"yclients_id": 11, "company_id": 1, "visit_count": 4})
    assert (stored.email, stored.visit_count) == ("keep@x.org", 4)


def test_conflict_on_another_unique_key_raises_conflict_error(
    unique_client_email: Database,
) -> None:
    repo = ClientsRepository(unique_client_email)
    repo.upsert(client(20, email="anna@example.org"))
    with pytest.raises(ConflictError) as info:
        repo.upsert(client(21, email="anna@example.org"))  # same e-mail, same salon
    assert info.value.sqlstate == "23505"
    assert "test_clients_email_key" in str(info.value)
    assert "anna@example.org" not in str(info.value)  # the row's values stay out of the message
    assert isinstance(info.value.__cause__, Exception)
    assert repo.count() == 1


def test_check_violation_is_a_validation_error(clean_db: Database) -> None:
    with pytest.raises(ValidationError) as info:
        ClientsRepository(clean_db).upsert(client(1, visit_count=-1))
    assert info.value.sqlstate == "23514"


# -- bulk_upsert ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 5_000])
def test_bulk_upsert_counts(clean_db: Database, count: int) -> None:
    repo = ClientsRepository(clean_db)
    rows = [client(i, tags=["t"], preferences={"i": i}) for i in range(count)]
    assert repo.bulk_upsert(rows) == count
    assert repo.count() == count
    if count:
        last = repo.find_one({"yclients_id": count - 1})
        assert last is not None and last.preferences == {"i": count - 1}


@pytest.mark.sync_only
@pytest.mark.slow
def test_bulk_upsert_100k_rows_at_constant_sql_size(
    clean_db: Database, recording_db: tuple[Database, list[str]]
) -> None:
    db, log = recording_db
    repo = ClientsRepository(db)
    rows = [client(i, company_id=5, tags=["a", "b"]) for i in range(100_000)]
    assert repo.bulk_upsert(rows) == 100_000
    statements_for_100k = list(log)
    log.clear()
    assert repo.bulk_upsert(rows[:3]) == 3
    # The same statements for 3 rows or 100 000 (which repeat them once per chunk).
    assert len(log) == 4
    assert set(log) == set(statements_for_100k)
    assert len(statements_for_100k) == 4 * -(-100_000 // repo.bulk_chunk_size)
    assert repo.count({"company_id": 5}) == 100_000


def test_bulk_upsert_duplicate_keys_last_wins(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    rows = [client(1, name="first"), client(2, name="other"), client(1, name="last")]
    assert repo.bulk_upsert(rows) == 2
    stored = repo.find_one({"yclients_id": 1})
    assert stored is not None and stored.name == "last"


def test_bulk_rows_travel_in_key_order_the_last_one_winning() -> None:
    """Sorted by the conflict key (index order for the merge, one lock order for all)."""
    rows = [client(3, name="3a"), client(1, company_id=2), client(1), client(3, name="3b")]
    columns, records = _sql.bulk_rows(ClientsRepository.table, rows)
    key = [columns.index("yclients_id"), columns.index("company_id")]
    assert [(r[key[0]], r[key[1]]) for r in records] == [(1, 1), (1, 2), (3, 1)]
    assert records[-1][columns.index("name")] == "3b"


def test_bulk_keys_that_cannot_be_ordered_are_refused_by_the_table(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    rows = [{"yclients_id": 2, "company_id": 1}, {"yclients_id": "1", "company_id": 1}]
    with pytest.raises(ValidationError):
        repo.bulk_upsert(rows)  # not a TypeError from sorting int and str
    assert repo.count() == 0


def test_bulk_upsert_accepts_mappings_and_updates(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    repo.bulk_upsert([client(1, email="a@x.org")])
    repo.bulk_upsert([{"yclients_id": 1, "company_id": 1, "visit_count": 9}])
    stored = repo.find_one({"yclients_id": 1})
    assert stored is not None and (stored.email, stored.visit_count) == ("a@x.org", 9)


def test_bulk_upsert_failing_row_in_a_later_chunk_writes_nothing(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    repo.bulk_chunk_size = 100  # several chunks, one transaction
    rows = [client(i) for i in range(1_000)]
    rows[750] = client(750, visit_count=-1)  # violates the CHECK constraint
    with pytest.raises(ValidationError):
        repo.bulk_upsert(rows)
    assert repo.count() == 0


def test_bulk_upsert_inside_a_transaction_uses_it(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    with pytest.raises(RuntimeError), clean_db.transaction():
        assert repo.bulk_upsert([client(1), client(2)]) == 2
        assert repo.count() == 2
        raise RuntimeError("roll back")
    assert repo.count() == 0


def test_bulk_upsert_dates_and_times(clean_db: Database) -> None:
    repo = StaffSchedulesRepository(clean_db)
    day = dt.date(2026, 12, 1)
    rows = [
        StaffSchedule(
            yclients_staff_id=i,
            company_id=1,
            date=day,
            work_start=dt.time(9),
            work_end=dt.time(18, 30),
        )
        for i in range(3)
    ]
    assert repo.bulk_upsert(rows) == 3
    stored = repo.find_one({"yclients_staff_id": 2, "date": day})
    assert stored is not None and stored.work_end == dt.time(18, 30)


# -- delete -----------------------------------------------------------------------------


def test_delete_with_operators(clients: ClientsRepository) -> None:
    assert clients.delete({"visit_count": {"gte": 3}}) == 2
    assert ids(clients.find_many(order_by="yclients_id")) == [1, 2]


# -- every repository matches its table ---------------------------------------------------


@pytest.mark.parametrize("repository", ALL_REPOSITORIES, ids=lambda r: r.table.name)
def test_repository_columns_match_the_table(
    clean_db: Database, repository: type[BaseRepository[Any]]
) -> None:
    table = repository.table
    with clean_db.connection() as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s",
            (table.name,),
        ).fetchall()
    assert {r[0] for r in rows} == set(table.columns)
    assert [f.name for f in dataclasses.fields(repository.row_type)] == list(table.columns)


@pytest.mark.parametrize("repository", ALL_REPOSITORIES, ids=lambda r: r.table.name)
def test_conflict_key_is_a_unique_index(
    clean_db: Database, repository: type[BaseRepository[Any]]
) -> None:
    table = repository.table
    with clean_db.connection() as conn:
        keys = conn.execute(
            sql.SQL(
                "SELECT array_agg(a.attname::text ORDER BY a.attname)"
                " FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = {}::regclass AND i.indisunique AND i.indpred IS NULL"
                " GROUP BY i.indexrelid"
            ).format(sql.Literal(table.name))
        ).fetchall()
    assert sorted(table.key) in [k[0] for k in keys]


@pytest.mark.parametrize(
    "bad",
    [
        {"visit_count": 2**40 + 5},  # binary COPY kept the low 32 bits: 5
        {"tags": "abc"},  # not an array (binary COPY stored ['a', 'b', 'c'])
        {"preferences": {"raw": b"\x00"}},  # not JSON
        {"last_visit_date": "not a date"},
        {"visit_count": object()},
    ],
)
def test_bulk_values_are_checked_like_single_upserts(
    clean_db: Database, bad: dict[str, Any]
) -> None:
    repo = ClientsRepository(clean_db)
    row = {"yclients_id": 1, "company_id": 1, **bad}
    with pytest.raises(ValidationError):
        repo.upsert(row)
    with pytest.raises(ValidationError):
        repo.bulk_upsert([row])
    assert repo.count() == 0


def test_bulk_dates_as_text_are_parsed_by_the_server(clean_db: Database) -> None:
    repo = ClientsRepository(clean_db)
    row = {"yclients_id": 1, "company_id": 1, "last_visit_date": "2026-01-02"}
    assert repo.bulk_upsert([row]) == 1
    stored = repo.find_one({"yclients_id": 1})
    assert stored is not None and stored.last_visit_date == dt.date(2026, 1, 2)
    assert repo.upsert(row) == repo.find_one({"yclients_id": 1})


def test_bulk_refuses_a_number_given_as_text(clean_db: Database) -> None:
    # Stricter than upsert(), which lets the server cast '3': refused, never corrupted.
    repo = ClientsRepository(clean_db)
    with pytest.raises(ValidationError):
        repo.bulk_upsert([{"yclients_id": 1, "company_id": 1, "visit_count": "3"}])
    assert repo.count() == 0


@pytest.mark.parametrize("repository", ALL_REPOSITORIES, ids=lambda r: r.__name__)
def test_rows_filled_through_slots_equal_rows_built_by_init(repository: Any) -> None:
    columns = tuple(repository.table.columns)
    assert _slot_setters(repository.row_type, columns) is not None  # the fast path is taken
    values = [object() for _ in columns]  # a distinct value per column: no mix-up hides
    made = _model_rows(repository.row_type, columns)(None)(values)
    assert made == repository.row_type(**dict(zip(columns, values, strict=True)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.company_id = 0


def test_a_row_type_with_post_init_is_built_through_init() -> None:
    seen: list[int] = []

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Checked:
        a: int
        b: int

        def __post_init__(self) -> None:
            seen.append(self.a + self.b)

    assert _slot_setters(Checked, ("a", "b")) is None
    assert _model_rows(Checked, ("a", "b"))(None)((1, 2)) == Checked(a=1, b=2)
    assert seen == [3, 3]
    assert _slot_setters(Checked, ("a",)) is None  # fields and columns differ: no fast path
