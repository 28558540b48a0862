"""WhatsApp (Baileys-style) auth state in PostgreSQL: store, health check, cleanup."""

from datalayer.whatsapp._cleanup import CleanupResult, cleanup_expired_keys
from datalayer.whatsapp._codec import decode_value, dumps_value, encode_value
from datalayer.whatsapp._health import HealthStatus, SessionHealth, check_session_health
from datalayer.whatsapp._store import (
    DEFAULT_KEY_TTL,
    DEFAULT_KEY_TTLS,
    KEY_TYPES,
    AuthStateStore,
    validate_session_id,
)

__all__ = [
    "DEFAULT_KEY_TTL",
    "DEFAULT_KEY_TTLS",
    "KEY_TYPES",
    "AuthStateStore",
    "CleanupResult",
    "HealthStatus",
    "SessionHealth",
    "check_session_health",
    "cleanup_expired_keys",
    "decode_value",
    "dumps_value",
    "encode_value",
    "validate_session_id",
]
