"""Rows as model objects: a row factory for the statements the repositories build."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from psycopg.rows import RowMaker

__all__ = ["model_rows"]

RowT = TypeVar("RowT")


def model_rows(row_type: type[RowT], columns: tuple[str, ...]) -> Callable[[Any], RowMaker[RowT]]:
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
