"""The dialog contexts repository (chat state per user and salon)."""

from __future__ import annotations

import datetime as dt

from datalayer.models import DialogContext
from datalayer.repositories import _tables as tables
from datalayer.repositories.base_async import AsyncBaseRepository

__all__ = ["AsyncDialogContextsRepository"]


class AsyncDialogContextsRepository(AsyncBaseRepository[DialogContext]):
    table = tables.DIALOG_CONTEXTS
    row_type = DialogContext

    async def find_for_user(
        self, user_id: str, company_id: int | None = None
    ) -> DialogContext | None:
        """A user's dialog context; ``company_id=None``: the most recently active one."""
        return await self._latest({"user_id": user_id}, company_id, by="last_activity")

    async def find_inactive_since(
        self, before: dt.datetime, *, limit: int = 1000
    ) -> list[DialogContext]:
        """Contexts whose last activity is older than ``before``, oldest first."""
        return await self.find_many(
            {"last_activity": {"lt": before}}, order_by="last_activity", limit=limit
        )
