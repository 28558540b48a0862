"""AuthStateStore: one WhatsApp session's Baileys-style auth state in PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from datalayer.errors import ValidationError
from datalayer.validation import redact_arguments
from datalayer.whatsapp._codec import decode_value, dumps_value
from errorkit import captured

if TYPE_CHECKING:
    from datalayer._database import Database
    from datalayer.whatsapp._health import SessionHealth

__all__ = ["DEFAULT_KEY_TTL", "DEFAULT_KEY_TTLS", "KEY_TYPES", "AuthStateStore"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_KEY_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_KEY_ID_BYTES = 1024

#: Baileys' signal key types (``SignalDataTypeMap``), v6 and v7.
KEY_TYPES = (
    "pre-key",
    "session",
    "sender-key",
    "sender-key-memory",
    "app-state-sync-key",
    "app-state-sync-version",
    "identity-key",
    "lid-mapping",
    "device-list",
    "tctoken",
)

#: TTL of a key type not listed in the table.
DEFAULT_KEY_TTL = timedelta(days=7)

#: How long a key lives after its last write; None: never expires.
#: Identity and app-state-sync keys (and LID mappings, which are identities too)
#: cannot be re-derived, so losing one breaks the session: they never expire.
DEFAULT_KEY_TTLS: Mapping[str, timedelta | None] = {
    "pre-key": timedelta(days=7),
    "session": timedelta(days=7),
    "sender-key": timedelta(days=7),
    "sender-key-memory": timedelta(days=7),
    "device-list": timedelta(days=7),
    "tctoken": timedelta(days=7),
    "app-state-sync-version": timedelta(days=14),
    "app-state-sync-key": None,
    "identity-key": None,
    "lid-mapping": None,
}

_OP = "whatsapp"

# Key ids are JIDs (a phone number before the '@') and values are key material:
# a report describes them (type and size), never shows them.
_REDACT = redact_arguments(("creds", "ids", "data"))


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is 1-64 letters, digits, ``_`` or ``-``."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise ValidationError(
            "session_id must be 1 to 64 characters of letters, digits, '_' or '-'"
        )
    return session_id


def _validate_key_type(key_type: object) -> str:
    if not isinstance(key_type, str) or not _KEY_TYPE.fullmatch(key_type):
        raise ValidationError(
            "WhatsApp key type must be 1 to 64 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return key_type


def _key_id(key_id: object) -> str:
    if isinstance(key_id, bool) or not isinstance(key_id, str | int) or key_id == "":
        # The id is not echoed: a key id is often a JID, a phone number.
        raise ValidationError("WhatsApp key id must be a non-empty string or an integer")
    text = str(key_id)
    # PostgreSQL text holds neither NUL nor lone surrogates; the byte limit keeps the
    # primary-key entry well under btree's maximum row size.
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    if "\x00" in text or not 0 < size <= _MAX_KEY_ID_BYTES:
        raise ValidationError(
            f"WhatsApp key id must be valid UTF-8 of at most {_MAX_KEY_ID_BYTES} bytes, "
            "without NUL characters"
        )
    return text


def _to_json(value: Any) -> str:
    try:
        return dumps_value(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"value cannot be stored as JSON: {exc}") from exc


class AuthStateStore:
    """Creds and signal keys of one WhatsApp session (Baileys ``useMultiFileAuthState`` shape).

    Every public method is an errorkit boundary (component ``whatsapp``) that
    re-raises: a read that fails must never look like "no keys" to the caller.
    Bad input raises :class:`~datalayer.errors.ValidationError` before any SQL.
    """

    def __init__(
        self,
        db: Database,
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
        return f"AuthStateStore(session_id={self.session_id!r})"

    def ttl_for(self, key_type: str) -> timedelta | None:
        """The TTL written for ``key_type`` (None: never expires)."""
        return self.ttls.get(key_type, self.default_ttl)

    @captured(_OP, "load_creds", expected=(ValidationError,))
    def load_creds(self) -> dict[str, Any] | None:
        """The session's creds document, bytes restored; None if none was saved."""
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT creds FROM whatsapp_auth WHERE session_id = %s", (self.session_id,)
            ).fetchone()
        if row is None:
            return None
        creds = decode_value(row[0])
        return creds if isinstance(creds, dict) else {"value": creds}

    @captured(_OP, "save_creds", expected=(ValidationError,), extra=_REDACT)
    def save_creds(self, creds: Mapping[str, Any]) -> None:
        """Store the creds document (it never expires)."""
        if not isinstance(creds, Mapping):
            raise ValidationError("creds must be a mapping")
        document = _to_json(creds)
        with self.db.connection() as conn:
            conn.execute(
                """
                INSERT INTO whatsapp_auth (session_id, creds, updated_at)
                VALUES (%s, %s::jsonb, now())
                ON CONFLICT (session_id)
                DO UPDATE SET creds = EXCLUDED.creds, updated_at = EXCLUDED.updated_at
                """,
                (self.session_id, document),
            )

    @captured(_OP, "get_keys", expected=(ValidationError,), extra=_REDACT)
    def get_keys(self, key_type: str, ids: Iterable[str | int]) -> dict[str, Any]:
        """Live keys of ``key_type`` among ``ids``, by id; missing or expired ids are absent."""
        key_type = _validate_key_type(key_type)
        wanted = list(dict.fromkeys(_key_id(key_id) for key_id in ids))
        if not wanted:
            return {}
        with self.db.connection() as conn:
            rows = conn.execute(
                """
                SELECT key_id, value FROM whatsapp_keys
                WHERE session_id = %s AND key_type = %s AND key_id = ANY(%s::text[])
                  AND (expires_at IS NULL OR expires_at > now())
                """,
                (self.session_id, key_type, wanted),
            ).fetchall()
        return {key_id: decode_value(value) for key_id, value in rows}

    @captured(_OP, "set_keys", expected=(ValidationError,), extra=_REDACT)
    def set_keys(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Write ``{type: {id: value}}`` in one transaction; a None value deletes the key.

        Each write (re)sets ``expires_at`` from the type's TTL. Two statements
        whatever the number of keys: one delete and one upsert, over arrays.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("set_keys expects {type: {id: value}}")
        # Keyed by (type, id) so that 1 and "1" are one key, last one wins.
        writes: dict[tuple[str, str], Any] = {}
        for raw_type, entries in data.items():
            key_type = _validate_key_type(raw_type)
            if not isinstance(entries, Mapping):
                raise ValidationError(f"keys of type {key_type!r} must be a mapping of id to value")
            for raw_id, value in entries.items():
                writes[key_type, _key_id(raw_id)] = value
        up_types: list[str] = []
        up_ids: list[str] = []
        up_values: list[str] = []
        up_ttls: list[float | None] = []
        del_types: list[str] = []
        del_ids: list[str] = []
        # Sorted, so concurrent writers lock overlapping keys in one order (no deadlock).
        for (key_type, key_id), value in sorted(writes.items(), key=lambda item: item[0]):
            if value is None:
                del_types.append(key_type)
                del_ids.append(key_id)
            else:
                ttl = self.ttl_for(key_type)
                up_types.append(key_type)
                up_ids.append(key_id)
                up_values.append(_to_json(value))
                up_ttls.append(None if ttl is None else ttl.total_seconds())
        if not up_ids and not del_ids:
            return
        with self.db.transaction() as conn:
            if del_ids:
                conn.execute(
                    """
                    DELETE FROM whatsapp_keys AS w
                    USING unnest(%s::text[], %s::text[]) AS k(key_type, key_id)
                    WHERE w.session_id = %s AND w.key_type = k.key_type AND w.key_id = k.key_id
                    """,
                    (del_types, del_ids, self.session_id),
                )
            if up_ids:
                conn.execute(
                    """
                    INSERT INTO whatsapp_keys
                        (session_id, key_type, key_id, value, expires_at, updated_at)
                    SELECT %s, k.key_type, k.key_id, k.value::jsonb,
                           now() + make_interval(secs => k.ttl), now()
                    FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[])
                         AS k(key_type, key_id, value, ttl)
                    ON CONFLICT (session_id, key_type, key_id) DO UPDATE
                    SET value = EXCLUDED.value,
                        expires_at = EXCLUDED.expires_at,
                        updated_at = EXCLUDED.updated_at
                    """,
                    (self.session_id, up_types, up_ids, up_values, up_ttls),
                )

    @captured(_OP, "clear")
    def clear(self) -> None:
        """Delete the session's creds and every key (logout)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM whatsapp_keys WHERE session_id = %s", (self.session_id,))
            conn.execute("DELETE FROM whatsapp_auth WHERE session_id = %s", (self.session_id,))

    def check_session_health(
        self, *, threshold: int = 300, warning_expired: int = 100, critical_expired: int = 500
    ) -> SessionHealth:
        """:func:`~datalayer.whatsapp.check_session_health` for this session only."""
        from datalayer.whatsapp._health import check_session_health

        return check_session_health(
            self.db,
            session_id=self.session_id,
            threshold=threshold,
            warning_expired=warning_expired,
            critical_expired=critical_expired,
        )
