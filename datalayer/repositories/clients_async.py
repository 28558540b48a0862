"""The clients repository."""

from __future__ import annotations

from datalayer.models import Client
from datalayer.repositories import _tables as tables
from datalayer.repositories._sql import like_escape
from datalayer.repositories.base_async import AsyncBaseRepository

__all__ = ["AsyncClientsRepository"]


class AsyncClientsRepository(AsyncBaseRepository[Client]):
    table = tables.CLIENTS
    row_type = Client

    async def find_by_id(self, yclients_id: int, company_id: int | None = None) -> Client | None:
        """The client with this booking-system id; ``company_id=None`` searches every salon."""
        return await self._latest({"yclients_id": yclients_id}, company_id)

    async def find_by_phone(self, phone: str, company_id: int | None = None) -> Client | None:
        """The client with this E.164-digits phone; the latest updated across salons if
        ``company_id`` is None."""
        return await self._latest({"phone": phone}, company_id)

    async def search_by_name(self, company_id: int, name: str, *, limit: int = 100) -> list[Client]:
        """Clients of a salon whose name contains ``name`` (case-insensitive, literal)."""
        pattern = f"%{like_escape(name)}%"
        return await self.find_many(
            {"company_id": company_id, "name": {"ilike": pattern}},
            order_by="name",
            limit=limit,
        )
