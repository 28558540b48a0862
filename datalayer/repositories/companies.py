"""The companies (salons) repository."""

from __future__ import annotations

from datalayer.models import Company
from datalayer.repositories._sql import Table
from datalayer.repositories.base import BaseRepository

__all__ = ["CompaniesRepository"]


class CompaniesRepository(BaseRepository[Company]):
    table = Table(
        "companies",
        {
            "company_id": "bigint",
            "title": "text",
            "timezone": "text",
            "phone": "text",
            "is_active": "boolean",
            "raw_data": "jsonb",
            "created_at": "timestamptz",
            "updated_at": "timestamptz",
        },
        key=("company_id",),
    )
    row_type = Company

    def find_by_id(self, company_id: int) -> Company | None:
        """The company with this id, or None."""
        return self.find_one({"company_id": company_id})

    def list_active(self) -> list[Company]:
        """Every active company, by id."""
        return self.find_many({"is_active": True}, order_by="company_id")
