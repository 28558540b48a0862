# WARNING: generated from _health_async.py by tools/async_to_sync.py: do not edit.
# Change the async source, then run `python tools/async_to_sync.py`.
"""Health of the stored WhatsApp auth state: key counts, expired keys, last cleanup.

The async check is the one source: ``tools/async_to_sync.py`` generates the sync
one from it. What does no I/O lives in ``_health_base.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datalayer.whatsapp._health_base import (
    AUTH_COUNT_SQL,
    KEYS_BY_TYPE_SQL,
    LAST_CLEANUP_SQL,
    OVER_THRESHOLD_SQL,
    SessionHealth,
    failed,
    fill_counts,
    judge,
    new_report,
    query_params,
)
from errorkit import captured

if TYPE_CHECKING:
    from datalayer._database import Database

__all__ = ["check_session_health"]


def check_session_health(
    db: Database,
    *,
    session_id: str | None = None,
    threshold: int = 300,
    warning_expired: int = 100,
    critical_expired: int = 500,
) -> SessionHealth:
    """Check the auth state of one session, or of every session when ``session_id`` is None.

    Status by expired (not yet cleaned up) keys: fewer than ``warning_expired``
    is ``healthy``, fewer than ``critical_expired`` ``warning``, else
    ``critical``; a session holding more than ``threshold`` keys makes it at
    least ``warning``. A database failure is reported once through errorkit
    and gives status ``error`` rather than an exception.
    """
    report = new_report(session_id, threshold, warning_expired, critical_expired)
    with captured("whatsapp", "check_session_health", reraise=False) as outcome:
        _fill_counts(db, report)
    if outcome.error is not None:
        return failed(report, outcome.error)
    return judge(report, warning_expired, critical_expired)


def _fill_counts(db: Database, report: SessionHealth) -> None:
    params = query_params(report)
    with db.connection() as conn:
        auth = (conn.execute(AUTH_COUNT_SQL, params)).fetchone()
        by_type = (conn.execute(KEYS_BY_TYPE_SQL, params)).fetchall()
        over = (conn.execute(OVER_THRESHOLD_SQL, params)).fetchall()
        last = (conn.execute(LAST_CLEANUP_SQL)).fetchone()
    fill_counts(report, auth, by_type, over, last)
