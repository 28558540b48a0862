"""What the WhatsApp health check does without I/O: its report, SQL, validation and bands.

Shared by ``check_session_health_async`` and the generated
``check_session_health``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from datalayer.errors import ValidationError
from datalayer.whatsapp._keys import validate_session_id
from errorkit import classify

__all__ = ["HealthStatus", "SessionHealth"]

HealthStatus = Literal["healthy", "warning", "critical", "error"]


class LastCleanup(TypedDict):
    finished_at: str
    deleted: int
    batches: int
    duration_ms: float
    error: str | None


class SessionOverThreshold(TypedDict):
    session_id: str
    keys: int


class SessionHealth(TypedDict):
    """What :func:`check_session_health` returns; JSON-ready (timestamps are ISO strings)."""

    status: HealthStatus
    message: str
    session_id: str | None
    auth_records: int
    total_keys: int
    expired_keys: int
    keys_by_type: dict[str, int]
    threshold: int
    sessions_over_threshold: list[SessionOverThreshold]
    last_cleanup: LastCleanup | None
    checked_at: str


# Sessions listed at most in `sessions_over_threshold`, biggest first.
_MAX_LISTED_SESSIONS = 100

_FILTER = "(%(session_id)s::text IS NULL OR session_id = %(session_id)s::text)"

AUTH_COUNT_SQL = f"SELECT count(*) FROM whatsapp_auth WHERE {_FILTER}"  # noqa: S608 - constant
KEYS_BY_TYPE_SQL = f"""
    SELECT key_type, count(*), count(*) FILTER (WHERE expires_at <= now())
    FROM whatsapp_keys WHERE {_FILTER}
    GROUP BY key_type ORDER BY key_type
"""  # noqa: S608 - constant
OVER_THRESHOLD_SQL = f"""
    SELECT session_id, count(*) FROM whatsapp_keys WHERE {_FILTER}
    GROUP BY session_id HAVING count(*) > %(threshold)s
    ORDER BY count(*) DESC, session_id LIMIT %(limit)s
"""  # noqa: S608 - constant
LAST_CLEANUP_SQL = """
    SELECT finished_at, deleted, batches, duration_ms, error
    FROM whatsapp_cleanup_runs ORDER BY finished_at DESC, id DESC LIMIT 1
"""


def new_report(
    session_id: str | None, threshold: int, warning_expired: int, critical_expired: int
) -> SessionHealth:
    """Validate the arguments (before any SQL) and start a report, status ``error``."""
    if session_id is not None:
        validate_session_id(session_id)
    for name, value in (
        ("threshold", threshold),
        ("warning_expired", warning_expired),
        ("critical_expired", critical_expired),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a positive integer")
    if critical_expired < warning_expired:
        raise ValidationError("critical_expired must not be below warning_expired")
    return {
        "status": "error",
        "message": "",
        "session_id": session_id,
        "auth_records": 0,
        "total_keys": 0,
        "expired_keys": 0,
        "keys_by_type": {},
        "threshold": threshold,
        "sessions_over_threshold": [],
        "last_cleanup": None,
        "checked_at": datetime.now(UTC).isoformat(),
    }


def query_params(report: SessionHealth) -> dict[str, Any]:
    """The parameters the count statements bind."""
    return {
        "session_id": report["session_id"],
        "threshold": report["threshold"],
        "limit": _MAX_LISTED_SESSIONS,
    }


def fill_counts(
    report: SessionHealth,
    auth: Sequence[Any] | None,
    by_type: Sequence[Sequence[Any]],
    over: Sequence[Sequence[Any]],
    last: Sequence[Any] | None,
) -> None:
    """Put the rows the four statements returned into ``report``."""
    report["auth_records"] = int(auth[0]) if auth else 0
    report["keys_by_type"] = {key_type: int(total) for key_type, total, _ in by_type}
    report["total_keys"] = sum(report["keys_by_type"].values())
    report["expired_keys"] = sum(int(expired) for _, _, expired in by_type)
    report["sessions_over_threshold"] = [
        {"session_id": sid, "keys": int(count)} for sid, count in over
    ]
    if last is not None:
        finished_at, deleted, batches, duration_ms, error = last
        report["last_cleanup"] = {
            "finished_at": finished_at.isoformat(),
            "deleted": int(deleted),
            "batches": int(batches),
            "duration_ms": float(duration_ms),
            "error": error,
        }


def failed(report: SessionHealth, error: Exception) -> SessionHealth:
    """``report`` for a check the database failed (status stays ``error``)."""
    report["message"] = (
        f"health check failed: {type(error).__name__} ({classify(error)}); see the logs for details"
    )
    return report


def judge(report: SessionHealth, warning_expired: int, critical_expired: int) -> SessionHealth:
    """Band ``report`` by expired keys and sessions over the threshold; write its message."""
    expired = report["expired_keys"]
    over = report["sessions_over_threshold"]
    if expired >= critical_expired:
        report["status"] = "critical"
    elif expired >= warning_expired or over:
        report["status"] = "warning"
    else:
        report["status"] = "healthy"
    parts = [f"{expired} expired of {report['total_keys']} keys"]
    if expired >= warning_expired:
        parts.append("run `datalayer whatsapp cleanup`")
    if over:
        parts.append(f"{len(over)} session(s) over {report['threshold']} keys")
    report["message"] = "; ".join(parts)
    return report
