# WARNING: generated from bookings_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The bookings repository."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from datalayer.models import Booking
from datalayer.repositories import _tables as tables
from datalayer.repositories.base import BaseRepository

__all__ = ["BookingsRepository"]


class BookingsRepository(BaseRepository[Booking]):
    table = tables.BOOKINGS
    row_type = Booking

    def find_for_client(
        self,
        client_id: int,
        company_id: int | None = None,
        *,
        limit: int = 100,
        order_by: str | Sequence[str] = "datetime",
        descending: bool = True,
    ) -> list[Booking]:
        """A client's bookings (by ``client_yclients_id``); ``company_id=None``: any salon."""
        filters: dict[str, Any] = {"client_yclients_id": client_id}
        if company_id is not None:
            filters["company_id"] = company_id
        return self.find_many(filters, order_by=order_by, descending=descending, limit=limit)

    def find_upcoming_for_client(
        self,
        client_id: int,
        company_id: int | None = None,
        *,
        now: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[Booking]:
        """A client's active bookings from ``now`` on (default: the current time), soonest first."""
        filters: dict[str, Any] = {
            "client_yclients_id": client_id,
            "status": "active",
            "datetime": {"gte": now or dt.datetime.now(dt.UTC)},
        }
        if company_id is not None:
            filters["company_id"] = company_id
        return self.find_many(filters, order_by="datetime", limit=limit)

    def find_in_range(
        self,
        company_id: int,
        start: dt.datetime,
        end: dt.datetime,
        *,
        staff_id: int | None = None,
        limit: int | None = None,
    ) -> list[Booking]:
        """A salon's bookings with ``start <= datetime < end``, soonest first."""
        filters: dict[str, Any] = {"company_id": company_id, "datetime": {"gte": start, "lt": end}}
        if staff_id is not None:
            filters["staff_id"] = staff_id
        return self.find_many(filters, order_by="datetime", limit=limit)
