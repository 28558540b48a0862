"""WhatsApp (Baileys-style) auth state in PostgreSQL: store, health check, cleanup.

Each I/O-facing name has an async twin (``AsyncAuthStateStore``,
``check_session_health_async``, ``cleanup_expired_keys_async``) built from the
same source, for an ``AsyncDatabase``.
"""

from datalayer.whatsapp._cleanup import cleanup_expired_keys
from datalayer.whatsapp._cleanup_async import cleanup_expired_keys_async
from datalayer.whatsapp._cleanup_base import CleanupResult
from datalayer.whatsapp._codec import decode_value, dumps_value, encode_value
from datalayer.whatsapp._health import check_session_health
from datalayer.whatsapp._health_async import check_session_health_async
from datalayer.whatsapp._health_base import HealthStatus, SessionHealth
from datalayer.whatsapp._keys import (
    DEFAULT_KEY_TTL,
    DEFAULT_KEY_TTLS,
    KEY_TYPES,
    validate_session_id,
)
from datalayer.whatsapp._store import AuthStateStore
from datalayer.whatsapp._store_async import AsyncAuthStateStore

__all__ = [
    "DEFAULT_KEY_TTL",
    "DEFAULT_KEY_TTLS",
    "KEY_TYPES",
    "AsyncAuthStateStore",
    "AuthStateStore",
    "CleanupResult",
    "HealthStatus",
    "SessionHealth",
    "check_session_health",
    "check_session_health_async",
    "cleanup_expired_keys",
    "cleanup_expired_keys_async",
    "decode_value",
    "dumps_value",
    "encode_value",
    "validate_session_id",
]
