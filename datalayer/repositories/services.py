# WARNING: generated from services_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The services repository."""

from __future__ import annotations

from typing import Any

from datalayer.models import Service
from datalayer.repositories import _tables as tables
from datalayer.repositories.base import BaseRepository

__all__ = ["ServicesRepository"]


class ServicesRepository(BaseRepository[Service]):
    table = tables.SERVICES
    row_type = Service

    def find_by_id(self, yclients_id: int, company_id: int | None = None) -> Service | None:
        """The service with this booking-system id; ``company_id=None`` searches every salon."""
        return self._latest({"yclients_id": yclients_id}, company_id)

    def list_for_company(self, company_id: int, *, include_inactive: bool = False) -> list[Service]:
        """A salon's services, heaviest weight first, then by title."""
        filters: dict[str, Any] = {"company_id": company_id}
        if not include_inactive:
            filters["is_active"] = True
        return self.find_many(filters, order_by=("-weight", "title"))

    def find_by_category(self, company_id: int, category_id: int) -> list[Service]:
        """A salon's active services in one category, by title."""
        return self.find_many(
            {"company_id": company_id, "category_id": category_id, "is_active": True},
            order_by="title",
        )
