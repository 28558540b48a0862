"""The companies (salons) repository."""

from __future__ import annotations

from datalayer.models import Company
from datalayer.repositories import _tables as tables
from datalayer.repositories.base_async import AsyncBaseRepository

__all__ = ["AsyncCompaniesRepository"]


class AsyncCompaniesRepository(AsyncBaseRepository[Company]):
    table = tables.COMPANIES
    row_type = Company

    async def find_by_id(self, company_id: int) -> Company | None:
        """The company with this id, or None."""
        return await self.find_one({"company_id": company_id})

    async def list_active(self) -> list[Company]:
        """Every active company, by id."""
        return await self.find_many({"is_active": True}, order_by="company_id")
