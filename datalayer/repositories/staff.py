# WARNING: generated from staff_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The staff repository."""

from __future__ import annotations

from typing import Any

from datalayer.models import Staff
from datalayer.repositories import _tables as tables
from datalayer.repositories.base import BaseRepository

__all__ = ["StaffRepository"]


class StaffRepository(BaseRepository[Staff]):
    table = tables.STAFF
    row_type = Staff

    def find_by_id(self, yclients_id: int, company_id: int | None = None) -> Staff | None:
        """The staff member with this booking-system id; ``company_id=None``: any salon."""
        return self._latest({"yclients_id": yclients_id}, company_id)

    def list_for_company(self, company_id: int, *, include_inactive: bool = False) -> list[Staff]:
        """A salon's staff, by name."""
        filters: dict[str, Any] = {"company_id": company_id}
        if not include_inactive:
            filters["is_active"] = True
        return self.find_many(filters, order_by="name")
