"""``BaseRepository``: the generic reads and writes every domain repository shares."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, ClassVar, Generic, TypeVar

from psycopg.rows import RowFactory, RowMaker

from datalayer._database import Database
from datalayer.errors import ValidationError
from datalayer.repositories import _sql
from datalayer.repositories._sql import Filters, Table

__all__ = ["BaseRepository"]

RowT = TypeVar("RowT")


class BaseRepository(Generic[RowT]):
    """Reads and writes one table, returning rows as ``row_type`` instances.

    Plain on purpose: it logs and reports nothing, and raises ``datalayer.errors``.
    Inside ``db.transaction()`` every call uses the transaction's connection.
    A subclass sets ``table`` and ``row_type`` and adds its named finders.
    """

    table: ClassVar[Table]
    row_type: type[RowT]
    #: Rows per COPY + merge round of ``bulk_upsert`` (all rounds share one transaction).
    bulk_chunk_size: int = 50_000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._row_factory = _model_rows(self.row_type, tuple(self.table.columns))

    # -- reads -----------------------------------------------------------------

    def find_one(self, filters: Filters | None = None) -> RowT | None:
        """The first row matching ``filters``, or None."""
        query = _sql.build_select(self.table, filters, limit=1)
        if query.matches_nothing:
            return None
        with self.db.connection() as conn:
            cur = conn.cursor(row_factory=self._row_factory)
            return cur.execute(query.statement, query.params).fetchone()

    def find_many(
        self,
        filters: Filters | None = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[RowT]:
        """Every row matching ``filters``, ordered and paged as asked.

        ``order_by`` is a column or a list of columns; ``"-column"`` sorts that one
        descending, and ``descending=True`` reverses every key.
        """
        query = _sql.build_select(
            self.table,
            filters,
            order_by=order_by,
            descending=descending,
            limit=limit,
            offset=offset,
        )
        if query.matches_nothing:
            return []
        with self.db.connection() as conn:
            cur = conn.cursor(row_factory=self._row_factory)
            return cur.execute(query.statement, query.params).fetchall()

    def _latest(
        self, filters: dict[str, Any], company_id: int | None, *, by: str = "updated_at"
    ) -> RowT | None:
        """The row matching ``filters`` with the greatest ``by``, in one salon or, with
        ``company_id=None``, in any (the named finders of the domain repositories)."""
        if company_id is not None:
            filters = {**filters, "company_id": company_id}
        found = self.find_many(filters, order_by=by, descending=True, limit=1)
        return found[0] if found else None

    def count(self, filters: Filters | None = None) -> int:
        """How many rows match ``filters``."""
        query = _sql.build_count(self.table, filters)
        if query.matches_nothing:
            return 0
        with self.db.connection() as conn:
            row = conn.execute(query.statement, query.params).fetchone()
        return int(row[0]) if row else 0

    # -- writes ------------------------------------------------------------------

    def upsert(self, row: RowT | dict[str, Any]) -> RowT:
        """Insert ``row`` or update the stored one with the same key; return the stored row."""
        query = _sql.build_upsert(self.table, row)
        with self.db.connection() as conn:
            cur = conn.cursor(row_factory=self._row_factory)
            stored = cur.execute(query.statement, query.params).fetchone()
        assert stored is not None  # RETURNING always yields the row
        return stored

    def bulk_upsert(self, rows: Iterable[RowT | dict[str, Any]]) -> int:
        """Upsert any number of rows atomically; return how many distinct keys were written.

        Duplicate keys within the batch: the last row wins. Rows travel by COPY in
        chunks of ``bulk_chunk_size``, all in one transaction: on any failure
        nothing is written.
        """
        columns, records = _sql.bulk_rows(self.table, rows)
        if not records:
            return 0
        statements = _sql.build_bulk_upsert(self.table, columns)
        written = 0
        # An unreported transaction (repositories stay plain), or a savepoint inside one;
        # behind PgBouncer it carries the statement timeout like any transaction.
        with self.db._transaction(report=False) as conn:
            iterator = iter(records)
            while chunk := list(islice(iterator, self.bulk_chunk_size)):
                conn.execute(statements.create)
                with conn.cursor() as cur:
                    with cur.copy(statements.copy) as copy:
                        copy.set_types(statements.types)
                        try:
                            for record in chunk:
                                copy.write_row(record)
                        except (TypeError, ValueError, LookupError) as exc:
                            # Raised while turning a value into text: the caller's data.
                            raise ValidationError(
                                f"a {self.table.name} row cannot be written: {exc}"
                            ) from exc
                    cur.execute(statements.merge)
                    written += max(cur.rowcount, 0)
                conn.execute(statements.drop)
        return written

    def delete(self, filters: Filters) -> int:
        """Delete the rows matching ``filters`` (at least one filter); return how many."""
        query = _sql.build_delete(self.table, filters)
        if query.matches_nothing:
            return 0
        with self.db.connection() as conn:
            cur = conn.execute(query.statement, query.params)
            return max(cur.rowcount, 0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} table={self.table.name}>"


def _model_rows(row_type: type[RowT], columns: tuple[str, ...]) -> RowFactory[RowT]:
    """Like ``psycopg.rows.class_row``, for the statements built here.

    Their select list is always ``columns``, in order (a test holds the table, the
    columns and the model fields together), so the names are known in advance and
    need not be read back from every result's description.
    """

    setters = _slot_setters(row_type, columns)
    if setters is None:

        def make(values: Sequence[Any]) -> RowT:
            return row_type(**dict(zip(columns, values, strict=True)))

    else:
        new = object.__new__

        def make(values: Sequence[Any]) -> RowT:
            # A frozen dataclass's __init__ sets each field through object.__setattr__
            # by name: 2-3x the cost of filling the slots directly, on every row read.
            row: RowT = new(row_type)
            for set_field, value in zip(setters, values, strict=True):
                set_field(row, value)
            return row

    def factory(cursor: Any) -> RowMaker[RowT]:
        return make

    return factory


def _slot_setters(
    row_type: type[Any], columns: tuple[str, ...]
) -> list[Callable[[Any, Any], None]] | None:
    """The slot setters of ``columns`` when building a row needs nothing else.

    That is: a slotted dataclass whose fields are exactly ``columns`` and that has
    no ``__post_init__``. Anything else is built through its ``__init__``.
    """
    if not dataclasses.is_dataclass(row_type) or hasattr(row_type, "__post_init__"):
        return None
    if {f.name for f in dataclasses.fields(row_type)} != set(columns):
        return None
    slots = [row_type.__dict__.get(name) for name in columns]
    if not all(isinstance(slot, types.MemberDescriptorType) for slot in slots):
        return None
    return [slot.__set__ for slot in slots]  # type: ignore[union-attr]
