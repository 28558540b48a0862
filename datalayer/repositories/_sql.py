"""Pure SQL builders: a table description in, ``(sql.Composed, params)`` out.

Nothing here touches a connection, so a sync or an async executor runs the same
queries. Every column, operator and order key is checked against the table's
own list first: a wrong one raises ``ValidationError`` before any SQL exists.
Names go through ``sql.Identifier``; values are always bound parameters.
Statement text is cached by the *shape* of a call (which columns, which
operators), never by its values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from psycopg import sql
from psycopg.abc import AdaptContext
from psycopg.types.json import Jsonb

from datalayer._collector import collector_paused
from datalayer.errors import ValidationError
from datalayer.validation import escape_like as like_escape

__all__ = [
    "OPERATORS",
    "BulkStatements",
    "Query",
    "Statement",
    "Table",
    "build_bulk_upsert",
    "build_count",
    "build_delete",
    "build_select",
    "build_upsert",
    "bulk_rows",
    "like_escape",
    "row_values",
]

OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "like", "ilike"})
_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

Filters = Mapping[str, Any]


class Statement(sql.Composed):
    """A composed statement rendered to bytes once, then reused on every execution.

    psycopg renders a ``Composed`` on each ``execute`` (escaping every identifier
    again); the statements here are cached by shape and name only the tables' own
    ASCII columns, so their text is the same for every connection and encoding.
    """

    _rendered: bytes | None = None

    def as_bytes(self, context: AdaptContext | None = None) -> bytes:
        if self._rendered is None:
            self._rendered = super().as_bytes(None)
        return self._rendered


class Query(NamedTuple):
    """A statement and its bound parameters.

    ``matches_nothing``: a filter is an empty ``in`` list, so the answer is known
    (no rows) and an executor need not send the statement at all.
    """

    statement: sql.Composed
    params: list[Any]
    matches_nothing: bool = False


@dataclass(frozen=True, eq=False)
class Table:
    """A table as the repositories see it.

    ``columns`` maps each column to its PostgreSQL type, in row-type field order;
    ``key`` is the conflict key of upserts (a unique index of the table);
    ``managed`` columns are set by the server and never written from a row;
    ``now_if_null`` columns get ``now()`` when written as NULL.
    """

    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    managed: frozenset[str] = frozenset({"created_at", "updated_at"})
    now_if_null: frozenset[str] = frozenset()
    identifier: sql.Identifier = field(init=False)
    writable: tuple[str, ...] = field(init=False)
    jsonb_columns: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        missing = [
            c for c in (*self.key, *self.managed, *self.now_if_null) if c not in self.columns
        ]
        if missing:
            raise ValueError(f"{self.name}: unknown columns {missing}")
        object.__setattr__(self, "identifier", sql.Identifier(self.name))
        writable = tuple(c for c in self.columns if c not in self.managed)
        object.__setattr__(self, "writable", writable)
        jsonb = frozenset(c for c, kind in self.columns.items() if kind == "jsonb")
        object.__setattr__(self, "jsonb_columns", jsonb)

    def check_column(self, column: object, role: str = "column") -> str:
        if not isinstance(column, str) or column not in self.columns:
            raise ValidationError(f"unknown {role} {column!r} for table {self.name}")
        return column


def _dumps_json(value: Any) -> str:
    # psycopg calls this while sending the query: a TypeError here would leave the
    # repository unclassified, so an unserialisable value is the caller's error.
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"a jsonb value must be JSON-serialisable: {exc}") from exc


def _adapt(table: Table, column: str, value: Any) -> Any:
    if column in table.jsonb_columns and value is not None and not isinstance(value, Jsonb):
        return Jsonb(value, dumps=_dumps_json)
    return value


# -- filters -------------------------------------------------------------------


def _parse_filters(
    table: Table, filters: Filters | None
) -> tuple[tuple[Any, ...], list[Any], bool]:
    """Check ``filters``; return their shape (hashable), parameters in order, and
    whether they match nothing (an empty ``in`` list)."""
    if filters is None:
        return (), [], False
    if not isinstance(filters, Mapping):
        raise ValidationError(f"filters must be a mapping, got {type(filters).__name__}")
    shape: list[tuple[str, str, bool]] = []
    params: list[Any] = []
    nothing = False
    columns = table.columns
    for column, spec in filters.items():
        if column not in columns:
            table.check_column(column)
        if not isinstance(spec, Mapping):
            # The common case, {column: value}, on the shortest path.
            if spec is None:
                shape.append((column, "eq", True))
            else:
                shape.append((column, "eq", False))
                params.append(_adapt(table, column, spec))
            continue
        if not spec:
            raise ValidationError(f"empty operator mapping for column {column!r}")
        for op, value in spec.items():
            if op not in OPERATORS:
                raise ValidationError(f"unknown operator {op!r} for column {column!r}")
            if op in ("eq", "ne") and value is None:
                shape.append((column, op, True))
                continue
            if value is None:
                raise ValidationError(f"operator {op!r} on {column!r} needs a value, got None")
            if op in ("in", "not_in"):
                if not isinstance(value, list | tuple | set | frozenset):
                    raise ValidationError(f"operator {op!r} on {column!r} needs a list of values")
                values = [_adapt(table, column, v) for v in value]
                if not values:
                    if op == "not_in":
                        continue  # excludes nothing
                    nothing = True
                shape.append((column, op, False))
                params.append(values)
                continue
            if op in ("like", "ilike") and not isinstance(value, str):
                raise ValidationError(f"operator {op!r} on {column!r} needs a string pattern")
            shape.append((column, op, False))
            params.append(_adapt(table, column, value))
    return tuple(shape), params, nothing


def _condition(table: Table, column: str, op: str, is_null: bool) -> sql.Composable:
    ident = sql.Identifier(column)
    if is_null:
        return sql.SQL("{} IS NULL" if op == "eq" else "{} IS NOT NULL").format(ident)
    if op in ("like", "ilike"):
        return sql.SQL("{} LIKE %s" if op == "like" else "{} ILIKE %s").format(ident)
    # The parameter is cast to the column's type: [1, 2] compares with an integer[]
    # column, and a bad value fails as the caller's (invalid text representation).
    column_type = sql.SQL(table.columns[column])
    if op in ("in", "not_in"):
        template = "{} = ANY(%s::{}[])" if op == "in" else "{} <> ALL(%s::{}[])"
        return sql.SQL(template).format(ident, column_type)
    if op == "eq":
        return sql.SQL("{} = %s::{}").format(ident, column_type)
    if op == "ne":
        # NULL is "not equal" to any value, as Python readers expect.
        return sql.SQL("{} IS DISTINCT FROM %s::{}").format(ident, column_type)
    return sql.SQL("{} " + _COMPARISONS[op] + " %s::{}").format(ident, column_type)


@lru_cache(maxsize=1024)
def _where(table: Table, shape: tuple[Any, ...]) -> sql.Composable:
    if not shape:
        return sql.SQL("")
    conditions = [_condition(table, *item) for item in shape]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)


@lru_cache(maxsize=64)
def _select_list(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in table.columns)


# -- reads and deletes --------------------------------------------------------------


def _order_keys(table: Table, order_by: str | Sequence[str] | None) -> tuple[tuple[str, bool], ...]:
    if order_by is None:
        return ()
    if isinstance(order_by, str):
        keys: tuple[object, ...] = (order_by,)
    elif isinstance(order_by, list | tuple):
        keys = tuple(order_by)
    else:  # an int, a set (no order), a mapping...: never iterated blindly
        raise ValidationError(f"order_by must be a column name or a list of them, got {order_by!r}")
    order: list[tuple[str, bool]] = []
    for key in keys:
        # "-column" sorts that column the other way (newest first, heaviest first).
        flipped = isinstance(key, str) and key.startswith("-")
        name = key[1:] if isinstance(key, str) and flipped else key
        order.append((table.check_column(name, "order key"), flipped))
    return tuple(order)


def _count_arg(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@lru_cache(maxsize=1024)
def _select_statement(
    table: Table,
    shape: tuple[Any, ...],
    order: tuple[tuple[str, bool], ...],
    descending: bool,
    limited: bool,
    offset: bool,
) -> sql.Composed:
    parts: list[sql.Composable] = [
        sql.SQL("SELECT "),
        _select_list(table),
        sql.SQL(" FROM "),
        table.identifier,
        _where(table, shape),
    ]
    if order:
        keys = [
            sql.Identifier(column) + sql.SQL(" DESC" if flipped != descending else "")
            for column, flipped in order
        ]
        parts.append(sql.SQL(" ORDER BY ") + sql.SQL(", ").join(keys))
    if limited:
        parts.append(sql.SQL(" LIMIT %s"))
    if offset:
        parts.append(sql.SQL(" OFFSET %s"))
    return Statement(parts)


def build_select(
    table: Table,
    filters: Filters | None = None,
    *,
    order_by: str | Sequence[str] | None = None,
    descending: bool = False,
    limit: int | None = None,
    offset: int | None = None,
) -> Query:
    """``SELECT <every column> FROM table WHERE ... ORDER BY ... LIMIT ... OFFSET ...``."""
    shape, params, nothing = _parse_filters(table, filters)
    order = _order_keys(table, order_by)
    limit = _count_arg("limit", limit)
    offset = _count_arg("offset", offset)
    if limit is not None:
        params.append(limit)
    if offset is not None:
        params.append(offset)
    statement = _select_statement(
        table, shape, order, bool(descending), limit is not None, offset is not None
    )
    return Query(statement, params, nothing)


@lru_cache(maxsize=256)
def _count_statement(table: Table, shape: tuple[Any, ...]) -> sql.Composed:
    return Statement(
        [sql.SQL("SELECT count(*) FROM {}{}").format(table.identifier, _where(table, shape))]
    )


def build_count(table: Table, filters: Filters | None = None) -> Query:
    """``SELECT count(*) FROM table WHERE ...``."""
    shape, params, nothing = _parse_filters(table, filters)
    return Query(_count_statement(table, shape), params, nothing)


@lru_cache(maxsize=256)
def _delete_statement(table: Table, shape: tuple[Any, ...]) -> sql.Composed:
    return Statement([sql.SQL("DELETE FROM {}{}").format(table.identifier, _where(table, shape))])


def build_delete(table: Table, filters: Filters) -> Query:
    """``DELETE FROM table WHERE ...``; empty filters are refused (no accidental wipe)."""
    if not filters:
        raise ValidationError(f"refusing to delete every row of {table.name}: no filters")
    shape, params, nothing = _parse_filters(table, filters)
    return Query(_delete_statement(table, shape), params, nothing)


# -- writes ------------------------------------------------------------------------


def row_values(table: Table, row: object) -> dict[str, Any]:
    """A row (model instance or mapping) as {column: value} of its writable columns.

    Unknown keys and a missing conflict-key column raise ``ValidationError``;
    server-managed columns (``created_at``, ``updated_at``) are dropped.
    """
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        items: Mapping[str, Any] = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    elif isinstance(row, Mapping):
        items = row
    else:
        raise ValidationError(
            f"a {table.name} row must be a dataclass or a mapping, got {type(row).__name__}"
        )
    values: dict[str, Any] = {}
    for column, value in items.items():
        table.check_column(column)
        if column not in table.managed:
            values[column] = value
    missing = [c for c in table.key if values.get(c) is None]
    if missing:
        raise ValidationError(f"a {table.name} row needs its key columns: {', '.join(missing)}")
    return values


def _value_sql(table: Table, column: str, source: sql.Composable) -> sql.Composable:
    if column in table.now_if_null:
        return sql.SQL("coalesce({}, now())").format(source)
    return source


def _conflict_update(table: Table, columns: Sequence[str]) -> sql.Composable:
    assignments: list[sql.Composable] = [
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in columns
        if c not in table.key
    ]
    if "updated_at" in table.columns:
        assignments.append(sql.SQL("{} = now()").format(sql.Identifier("updated_at")))
    return sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in table.key),
        sql.SQL(", ").join(assignments),
    )


@lru_cache(maxsize=256)
def _upsert_statement(table: Table, columns: tuple[str, ...]) -> sql.Composed:
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}){} RETURNING {}").format(
        table.identifier,
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(_value_sql(table, c, sql.Placeholder()) for c in columns),
        _conflict_update(table, columns),
        _select_list(table),
    )
    return Statement([statement])


def build_upsert(table: Table, row: object) -> Query:
    """``INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING <every column>``.

    Only the row's own columns are written: a mapping that leaves a column out
    keeps its stored value (or the column default on insert).
    """
    values = row_values(table, row)
    columns = tuple(c for c in table.writable if c in values)
    params = [_adapt(table, c, values[c]) for c in columns]
    return Query(_upsert_statement(table, columns), params)


class BulkStatements(NamedTuple):
    """The statements of one bulk upsert chunk, run in this order in one transaction.

    ``copy`` is a text-format ``COPY ... FROM STDIN`` fed with the records of
    ``bulk_rows``, with ``types`` given to ``Copy.set_types``. Text, not binary: the
    server parses every value, so an out-of-range number is refused (binary COPY of
    2**40 into an integer column silently kept the low 32 bits); the set types keep
    the dumpers fixed per column (faster than binary here) and refuse a value of the
    wrong Python type, such as the string "3" for an integer.
    """

    create: sql.Composed
    copy: sql.Composed
    types: tuple[str, ...]
    merge: sql.Composed
    drop: sql.Composed


@lru_cache(maxsize=256)
def build_bulk_upsert(table: Table, columns: tuple[str, ...]) -> BulkStatements:
    """COPY into a temporary table, then one ``INSERT ... SELECT ... ON CONFLICT``.

    The SQL is the same for 1 row or a million; the rows travel by COPY.
    """
    for column in columns:
        table.check_column(column)
    temp = sql.Identifier(f"_bulk_{table.name}")
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    # Only the batch's columns, without constraints: the target table judges the rows.
    create = sql.SQL(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
    ).format(temp, column_list, table.identifier)
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(temp, column_list)
    merge = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}{}").format(
        table.identifier,
        column_list,
        sql.SQL(", ").join(_value_sql(table, c, sql.Identifier(c)) for c in columns),
        temp,
        _conflict_update(table, columns),
    )
    drop = sql.SQL("DROP TABLE {}").format(temp)
    return BulkStatements(
        Statement([create]),
        Statement([copy]),
        tuple(table.columns[c] for c in columns),
        Statement([merge]),
        Statement([drop]),
    )


def bulk_rows(
    table: Table, rows: Iterable[object]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The columns and value tuples of a batch, duplicate keys dropped (the last one wins),
    in key order.

    Every row must carry the same columns: a bulk write never fills gaps with NULL.
    The first row is checked in full; the rest only need the same type (a model)
    or the same keys (a mapping). A NULL key value is refused by the table itself.
    """
    batch = list(rows)  # the caller's iterator runs outside the pause (it may do I/O)
    with collector_paused():
        return _bulk_rows(table, batch)


def _bulk_rows(table: Table, batch: list[Any]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    if not batch:
        return (), []
    first = batch[0]
    columns = tuple(c for c in table.writable if c in row_values(table, first))
    pick = _picker(first, columns)
    # The usual batch (plain dicts with the first one's keys, or one model type) is
    # checked and taken apart by C loops (map, set, dict), not a Python statement a row:
    # at 100k rows the per-row loop cost as much as validating the payloads.
    if isinstance(first, Mapping):
        expected = first.keys()
        usual = set(map(type, batch)) == {dict} and all(map(expected.__eq__, map(dict.keys, batch)))
    else:
        usual = set(map(type, batch)) == {type(first)}
    if usual:
        records = list(map(pick, batch))
    else:
        records = [
            pick(row) if _same_shape(row, first) else _other_shape(table, row, columns, index)
            for index, row in enumerate(batch)
        ]
    key_of = operator.itemgetter(*(columns.index(c) for c in table.key))
    # In key order, the merge walks the conflict index in order: an unsorted 100k batch
    # took 1.5x the CPU of the same batch sorted, where ORDER BY in the merge spilled its
    # sort to disk. Batches sharing keys also lock their rows in one order, not into a
    # deadlock. A batch already in strictly increasing key order (the usual sync) has
    # no duplicate either, and is kept as it is without a dict of 100k keys to collect.
    following = map(key_of, itertools.islice(records, 1, None))
    if not _strictly_increasing(map(key_of, records), following):
        # A later row replaces an earlier one with the same key.
        by_key = dict(zip(map(key_of, records), records, strict=True))
        records = list(by_key.values())
        # Keys of mixed types cannot be ordered; the table refuses them anyway.
        with contextlib.suppress(TypeError):
            records.sort(key=key_of)
    for position, column in enumerate(columns):
        if table.columns[column].endswith("[]"):
            _check_arrays(table, column, map(operator.itemgetter(position), records))
    return columns, records


def _strictly_increasing(keys: Iterable[Any], following: Iterable[Any]) -> bool:
    try:
        return all(map(operator.lt, keys, following))
    except TypeError:  # keys of mixed types
        return False


_ARRAY_TYPES = frozenset({list, tuple, type(None)})


def _check_arrays(table: Table, column: str, values: Iterable[Any]) -> None:
    # COPY's array dumper would spell the string "abc" as {a,b,c}.
    values = list(values)
    if set(map(type, values)) <= _ARRAY_TYPES:
        return
    for value in values:
        if value is not None and not isinstance(value, list | tuple):
            raise ValidationError(f"{table.name}.{column} needs a list, got {type(value).__name__}")


def _picker(first: object, columns: tuple[str, ...]) -> Any:
    """The record (column values in order, a tuple) of a row shaped like ``first``."""
    if isinstance(first, Mapping):
        if len(columns) > 1:
            return operator.itemgetter(*columns)
        column = columns[0]
        return lambda row: (row[column],)
    if len(columns) > 1:
        return operator.attrgetter(*columns)
    getter = operator.attrgetter(columns[0])
    return lambda row: (getter(row),)


def _same_shape(row: object, first: object) -> bool:
    if isinstance(first, Mapping):
        return isinstance(row, Mapping) and row.keys() == first.keys()
    return type(row) is type(first)


def _other_shape(
    table: Table, row: object, columns: tuple[str, ...], index: int
) -> tuple[Any, ...]:
    """The record of a row unlike the first one, if it still has the same columns."""
    values = row_values(table, row)
    if values.keys() != set(columns):
        raise ValidationError(
            f"bulk rows for {table.name} must all have the same columns; "
            f"row {index} differs from row 0"
        )
    return tuple(values[c] for c in columns)
