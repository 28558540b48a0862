"""The staff repository."""

from __future__ import annotations

from typing import Any

from datalayer.models import Staff
from datalayer.repositories import _tables as tables
from datalayer.repositories.base_async import AsyncBaseRepository

__all__ = ["AsyncStaffRepository"]


class AsyncStaffRepository(AsyncBaseRepository[Staff]):
    table = tables.STAFF
    row_type = Staff

    async def find_by_id(self, yclients_id: int, company_id: int | None = None) -> Staff | None:
        """The staff member with this booking-system id; ``company_id=None``: any salon."""
        return await self._latest({"yclients_id": yclients_id}, company_id)

    async def list_for_company(
        self, company_id: int, *, include_inactive: bool = False
    ) -> list[Staff]:
        """A salon's staff, by name."""
        filters: dict[str, Any] = {"company_id": company_id}
        if not include_inactive:
            filters["is_active"] = True
        return await self.find_many(filters, order_by="name")
