"""What the auth-state store does without I/O: key types, TTLs, validation, SQL, write plans.

Shared by ``AsyncAuthStateStore`` and the generated ``AuthStateStore`` (and by
the health check), so each rule and each statement exists once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from datalayer.errors import ValidationError
from datalayer.validation import redact_arguments
from datalayer.whatsapp._codec import decode_value, dumps_value

__all__ = [
    "DEFAULT_KEY_TTL",
    "DEFAULT_KEY_TTLS",
    "KEY_TYPES",
    "KeyWrites",
    "plan_writes",
    "validate_session_id",
]

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

#: The errorkit component of every store boundary.
COMPONENT = "whatsapp"

# Key ids are JIDs (a phone number before the '@') and values are key material:
# a report describes them (type and size), never shows them.
REDACT = redact_arguments(("creds", "ids", "data"))

# --- SQL (values always bound) ---------------------------------------------------------

LOAD_CREDS_SQL = "SELECT creds FROM whatsapp_auth WHERE session_id = %s"

SAVE_CREDS_SQL = """
    INSERT INTO whatsapp_auth (session_id, creds, updated_at)
    VALUES (%s, %s::jsonb, now())
    ON CONFLICT (session_id)
    DO UPDATE SET creds = EXCLUDED.creds, updated_at = EXCLUDED.updated_at
"""

GET_KEYS_SQL = """
    SELECT key_id, value FROM whatsapp_keys
    WHERE session_id = %s AND key_type = %s AND key_id = ANY(%s::text[])
      AND (expires_at IS NULL OR expires_at > now())
"""

DELETE_KEYS_SQL = """
    DELETE FROM whatsapp_keys AS w
    USING unnest(%s::text[], %s::text[]) AS k(key_type, key_id)
    WHERE w.session_id = %s AND w.key_type = k.key_type AND w.key_id = k.key_id
"""

UPSERT_KEYS_SQL = """
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
"""

CLEAR_KEYS_SQL = "DELETE FROM whatsapp_keys WHERE session_id = %s"
CLEAR_AUTH_SQL = "DELETE FROM whatsapp_auth WHERE session_id = %s"


# --- validation --------------------------------------------------------------------------


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is 1-64 letters, digits, ``_`` or ``-``."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise ValidationError(
            "session_id must be 1 to 64 characters of letters, digits, '_' or '-'"
        )
    return session_id


def validate_key_type(key_type: object) -> str:
    """Return ``key_type`` if it is a plausible signal key type name."""
    if not isinstance(key_type, str) or not _KEY_TYPE.fullmatch(key_type):
        raise ValidationError(
            "WhatsApp key type must be 1 to 64 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return key_type


def key_id(raw: object) -> str:
    """A key id as stored (text); ints are accepted, as Baileys passes pre-key ids."""
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        # The id is not echoed: a key id is often a JID, a phone number.
        raise ValidationError("WhatsApp key id must be a non-empty string or an integer")
    text = str(raw)
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


def key_ids(ids: Any) -> list[str]:
    """The distinct ids of a ``get_keys`` call, in order, validated."""
    return list(dict.fromkeys(key_id(raw) for raw in ids))


def to_json(value: Any) -> str:
    """``value`` as the JSON text stored (bytes as Buffer JSON); ValidationError if it cannot be."""
    try:
        return dumps_value(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"value cannot be stored as JSON: {exc}") from exc


def creds_document(creds: object) -> str:
    """The JSON text ``save_creds`` stores."""
    if not isinstance(creds, Mapping):
        raise ValidationError("creds must be a mapping")
    return to_json(creds)


def creds_from_row(row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    """What ``load_creds`` returns for the row it read."""
    if row is None:
        return None
    creds = decode_value(row[0])
    return creds if isinstance(creds, dict) else {"value": creds}


@dataclass(slots=True)
class KeyWrites:
    """One ``set_keys`` call as the arrays its two statements bind, sorted by (type, id)."""

    up_types: list[str] = field(default_factory=list)
    up_ids: list[str] = field(default_factory=list)
    up_values: list[str] = field(default_factory=list)
    up_ttls: list[float | None] = field(default_factory=list)
    del_types: list[str] = field(default_factory=list)
    del_ids: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.up_ids or self.del_ids)


def plan_writes(data: object, ttl_for: Callable[[str], timedelta | None]) -> KeyWrites:
    """Validate ``{type: {id: value or None}}`` and build the arrays ``set_keys`` binds.

    Keyed by (type, id), so that 1 and "1" are one key (the last one wins).
    Sorted, so concurrent writers lock overlapping keys in one order: no deadlock.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("set_keys expects {type: {id: value}}")
    writes: dict[tuple[str, str], Any] = {}
    for raw_type, entries in data.items():
        key_type = validate_key_type(raw_type)
        if not isinstance(entries, Mapping):
            raise ValidationError(f"keys of type {key_type!r} must be a mapping of id to value")
        for raw_id, value in entries.items():
            writes[key_type, key_id(raw_id)] = value
    plan = KeyWrites()
    for (key_type, one_id), value in sorted(writes.items(), key=lambda item: item[0]):
        if value is None:
            plan.del_types.append(key_type)
            plan.del_ids.append(one_id)
        else:
            ttl = ttl_for(key_type)
            plan.up_types.append(key_type)
            plan.up_ids.append(one_id)
            plan.up_values.append(to_json(value))
            plan.up_ttls.append(None if ttl is None else ttl.total_seconds())
    return plan
