"""AsyncAuthStateStore: one WhatsApp session's Baileys-style auth state in PostgreSQL.

The async store is the one source: ``tools/async_to_sync.py`` generates the sync
store from it. What does no I/O (validation, TTLs, SQL, the sorted write plan)
lives in ``_keys.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from datalayer.errors import ValidationError
from datalayer.whatsapp._codec import decode_value
from datalayer.whatsapp._health_async import check_session_health_async
from datalayer.whatsapp._health_base import SessionHealth
from datalayer.whatsapp._keys import (
    CLEAR_AUTH_SQL,
    CLEAR_KEYS_SQL,
    COMPONENT,
    DEFAULT_KEY_TTL,
    DEFAULT_KEY_TTLS,
    DELETE_KEYS_SQL,
    GET_KEYS_SQL,
    LOAD_CREDS_SQL,
    REDACT,
    SAVE_CREDS_SQL,
    UPSERT_KEYS_SQL,
    creds_document,
    creds_from_row,
    key_ids,
    plan_writes,
    validate_key_type,
    validate_session_id,
)
from errorkit import captured

if TYPE_CHECKING:
    from datalayer._database_async import AsyncDatabase

__all__ = ["AsyncAuthStateStore"]


class AsyncAuthStateStore:
    """Creds and signal keys of one WhatsApp session (Baileys ``useMultiFileAuthState`` shape).

    Every public method is an errorkit boundary (component ``whatsapp``) that
    re-raises: a read that fails must never look like "no keys" to the caller.
    Bad input raises :class:`~datalayer.errors.ValidationError` before any SQL.
    """

    def __init__(
        self,
        db: AsyncDatabase,
        session_id: str,
        *,
        ttls: Mapping[str, timedelta | None] | None = None,
        default_ttl: timedelta | None = DEFAULT_KEY_TTL,
    ) -> None:
        self.db = db
        self.session_id = validate_session_id(session_id)
        self.ttls: dict[str, timedelta | None] = {**DEFAULT_KEY_TTLS, **(ttls or {})}
        self.default_ttl = default_ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r})"

    def ttl_for(self, key_type: str) -> timedelta | None:
        """The TTL written for ``key_type`` (None: never expires)."""
        return self.ttls.get(key_type, self.default_ttl)

    @captured(COMPONENT, "load_creds", expected=(ValidationError,))
    async def load_creds(self) -> dict[str, Any] | None:
        """The session's creds document, bytes restored; None if none was saved."""
        async with self.db.connection() as conn:
            cursor = await conn.execute(LOAD_CREDS_SQL, (self.session_id,))
            row = await cursor.fetchone()
        return creds_from_row(row)

    @captured(COMPONENT, "save_creds", expected=(ValidationError,), extra=REDACT)
    async def save_creds(self, creds: Mapping[str, Any]) -> None:
        """Store the creds document (it never expires)."""
        document = creds_document(creds)
        async with self.db.connection() as conn:
            await conn.execute(SAVE_CREDS_SQL, (self.session_id, document))

    @captured(COMPONENT, "get_keys", expected=(ValidationError,), extra=REDACT)
    async def get_keys(self, key_type: str, ids: Iterable[str | int]) -> dict[str, Any]:
        """Live keys of ``key_type`` among ``ids``, by id; missing or expired ids are absent."""
        key_type = validate_key_type(key_type)
        wanted = key_ids(ids)
        if not wanted:
            return {}
        async with self.db.connection() as conn:
            cursor = await conn.execute(GET_KEYS_SQL, (self.session_id, key_type, wanted))
            rows = await cursor.fetchall()
        return {key_id: decode_value(value) for key_id, value in rows}

    @captured(COMPONENT, "set_keys", expected=(ValidationError,), extra=REDACT)
    async def set_keys(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Write ``{type: {id: value}}`` in one transaction; a None value deletes the key.

        Each write (re)sets ``expires_at`` from the type's TTL. Two statements
        whatever the number of keys: one delete and one upsert, over arrays,
        in (type, id) order so that concurrent writers never deadlock.
        """
        plan = plan_writes(data, self.ttl_for)
        if not plan:
            return
        async with self.db.transaction() as conn:
            if plan.del_ids:
                await conn.execute(DELETE_KEYS_SQL, (plan.del_types, plan.del_ids, self.session_id))
            if plan.up_ids:
                await conn.execute(
                    UPSERT_KEYS_SQL,
                    (self.session_id, plan.up_types, plan.up_ids, plan.up_values, plan.up_ttls),
                )

    @captured(COMPONENT, "clear")
    async def clear(self) -> None:
        """Delete the session's creds and every key (logout)."""
        async with self.db.transaction() as conn:
            await conn.execute(CLEAR_KEYS_SQL, (self.session_id,))
            await conn.execute(CLEAR_AUTH_SQL, (self.session_id,))

    async def check_session_health(
        self, *, threshold: int = 300, warning_expired: int = 100, critical_expired: int = 500
    ) -> SessionHealth:
        """:func:`~datalayer.whatsapp.check_session_health_async` for this session only."""
        return await check_session_health_async(
            self.db,
            session_id=self.session_id,
            threshold=threshold,
            warning_expired=warning_expired,
            critical_expired=critical_expired,
        )
