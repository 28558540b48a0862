"""The dialog contexts repository (chat state per user and salon)."""

from __future__ import annotations

import datetime as dt

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
        return self._latest({"user_id": user_id}, company_id, by="last_activity")

    def find_inactive_since(self, before: dt.datetime, *, limit: int = 1000) -> list[DialogContext]:
        """Contexts whose last activity is older than ``before``, oldest first."""
        return self.find_many(
            {"last_activity": {"lt": before}}, order_by="last_activity", limit=limit
        )
