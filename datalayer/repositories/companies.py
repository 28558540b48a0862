# WARNING: generated from companies_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""The companies (salons) repository."""

from __future__ import annotations

from datalayer.models import Company
from datalayer.repositories import _tables as tables
from datalayer.repositories.base import BaseRepository

__all__ = ["CompaniesRepository"]


class CompaniesRepository(BaseRepository[Company]):
    table = tables.COMPANIES
    row_type = Company

    def find_by_id(self, company_id: int) -> Company | None:
        """The company with this id, or None."""
        return self.find_one({"company_id": company_id})

    def list_active(self) -> list[Company]:
        """Every active company, by id."""
        return self.find_many({"is_active": True}, order_by="company_id")
