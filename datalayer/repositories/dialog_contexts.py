"""The dialog contexts repository (chat state per user and salon)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from datalayer.models import DialogContext
from datalayer.repositories._sql import Table
from datalayer.repositories.base import BaseRepository

__all__ = ["DialogContextsRepository"]


class DialogContextsRepository(BaseRepository[DialogContext]):
    table = Table(
        "dialog_contexts",
        {
            "user_id": "text",
            "company_id": "bigint",
            "state": "text",
            "data": "jsonb",
            "messages": "jsonb",
            "last_activity": "timestamptz",
            "created_at": "timestamptz",
            "updated_at": "timestamptz",
        },
        key=("user_id", "company_id"),
        now_if_null=frozenset({"last_activity"}),
    )
    row_type = DialogContext

    def find_for_user(self, user_id: str, company_id: int | None = None) -> DialogContext | None:
        """A user's dialog context; ``company_id=None``: the most recently active one."""
        filters: dict[str, Any] = {"user_id": user_id}
        if company_id is not None:
            filters["company_id"] = company_id
        found = self.find_many(filters, order_by="last_activity", descending=True, limit=1)
        return found[0] if found else None

    def find_inactive_since(self, before: dt.datetime, *, limit: int = 1000) -> list[DialogContext]:
        """Contexts whose last activity is older than ``before``, oldest first."""
        return self.find_many(
            {"last_activity": {"lt": before}}, order_by="last_activity", limit=limit
        )
