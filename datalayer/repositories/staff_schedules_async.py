"""The staff schedules repository (one row per staff member and day)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from datalayer.models import StaffSchedule
from datalayer.repositories import _tables as tables
from datalayer.repositories.base_async import AsyncBaseRepository

__all__ = ["AsyncStaffSchedulesRepository"]


class AsyncStaffSchedulesRepository(AsyncBaseRepository[StaffSchedule]):
    table = tables.STAFF_SCHEDULES
    row_type = StaffSchedule

    async def find_for_staff_on(
        self, staff_id: int, date: dt.date, company_id: int | None = None
    ) -> StaffSchedule | None:
        """One staff member's schedule on one day; ``company_id=None``: any salon."""
        return await self._latest({"yclients_staff_id": staff_id, "date": date}, company_id)

    async def find_in_range(
        self,
        company_id: int,
        *,
        staff_id: int | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        is_working: bool | None = None,
        limit: int = 100,
    ) -> list[StaffSchedule]:
        """A salon's schedules, by day then staff id; the date range includes both ends."""
        filters: dict[str, Any] = {"company_id": company_id}
        if staff_id is not None:
            filters["yclients_staff_id"] = staff_id
        dates: dict[str, dt.date] = {}
        if date_from is not None:
            dates["gte"] = date_from
        if date_to is not None:
            dates["lte"] = date_to
        if dates:
            filters["date"] = dates
        if is_working is not None:
            filters["is_working"] = is_working
        return await self.find_many(filters, order_by=("date", "yclients_staff_id"), limit=limit)
