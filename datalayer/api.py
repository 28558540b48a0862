"""The health HTTP API: a Starlette app behind errorkit's ASGI middleware.

``GET /health`` (liveness plus a database ping), ``GET /health/db`` (pool
figures, connection budget, ping latency), ``GET /health/whatsapp`` (the
auth-state health check: 200 healthy or warning, 503 critical, 500 error) and
``GET /metrics`` (Prometheus; 404 when metrics are off).
Bodies are JSON; failures carry an error kind, never a traceback or a
connection string. Served by ``datalayer serve``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from datalayer._metrics import watch_pool, watch_whatsapp_keys
from datalayer.errors import ValidationError
from datalayer.whatsapp import check_session_health
from errorkit import captured, classify
from errorkit import metrics as errorkit_metrics
from errorkit.asgi import ErrorkitMiddleware

if TYPE_CHECKING:
    from datalayer._database import Database

__all__ = ["WHATSAPP_STATUS_CODES", "create_app"]

#: HTTP status of ``/health/whatsapp`` per health status.
WHATSAPP_STATUS_CODES: Mapping[str, int] = {
    "healthy": 200,
    "warning": 200,
    "critical": 503,
    "error": 500,
}


def json_response(body: Mapping[str, Any], status_code: int = 200) -> Response:
    """A JSON response; values JSON cannot represent (datetimes...) become strings."""
    return Response(
        json.dumps(body, default=str, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
    )


def ping_database(db: Database) -> dict[str, Any]:
    """``{"ok": True, "latency_ms": ...}`` or ``{"ok": False, "error": kind}``; never raises.

    A failed ping is reported once through errorkit (component ``api``).
    """
    latency_ms: float | None = None
    with captured("api", "ping_database", reraise=False) as boundary:
        latency_ms = db.ping()
    if boundary.error is not None or latency_ms is None:
        kind = classify(boundary.error) if boundary.error is not None else "internal"
        return {"ok": False, "error": kind}
    return {"ok": True, "latency_ms": round(latency_ms, 3)}


def database_report(db: Database) -> dict[str, Any]:
    """Ping, pool statistics and the connection budget (when it can be computed)."""
    ping = ping_database(db)
    report: dict[str, Any] = {"status": "ok" if ping["ok"] else "error", "database": ping}
    with captured("api", "pool_stats", reraise=False) as boundary:
        report["pool"] = dict(db.stats())
    if boundary.error is not None:
        report["pool"] = None
    # Without a server there is no budget to read; one failure report is enough.
    report["budget"] = _budget(db) if ping["ok"] else None
    report["checked_at"] = datetime.now(UTC).isoformat()
    return report


def _budget(db: Database) -> dict[str, Any] | None:
    """The connection budget of ``db``'s settings against the server; None if unreadable."""
    budget: dict[str, Any] | None = None
    with captured("api", "pool_budget", reraise=False):
        budget = db.budget().as_dict()
    return budget


def metrics(request: Request) -> Response:
    """A Prometheus scrape of the process (sync: Starlette runs it in a worker thread,
    since a scrape may count WhatsApp keys in the database)."""
    if not errorkit_metrics.enabled():
        return json_response({"error": "metrics_disabled"}, 404)
    body, content_type = errorkit_metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def _internal_error(request: Request, exc: Exception) -> Response:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return json_response({"error": "internal_error", "request_id": request_id}, 500)


def create_app(db: Database, *, routes: Sequence[BaseRoute] = ()) -> ErrorkitMiddleware:
    """The health API for ``db`` (the caller owns ``db`` and closes it).

    ``routes`` are mounted beside the health endpoints, for a service that
    wants its own under the same middleware. ``db``'s pool figures and WhatsApp
    key counts join the process's metrics.
    """
    watch_pool(db)
    watch_whatsapp_keys(db)

    def health(request: Request) -> Response:
        ping = ping_database(db)
        ok = bool(ping["ok"])
        return json_response(
            {"status": "ok" if ok else "error", "database": ping}, 200 if ok else 503
        )

    def health_db(request: Request) -> Response:
        report = database_report(db)
        return json_response(report, 200 if report["status"] == "ok" else 503)

    def health_whatsapp(request: Request) -> Response:
        session_id = request.query_params.get("session_id") or None
        try:
            report = check_session_health(db, session_id=session_id)
        except ValidationError as exc:
            return json_response({"status": "invalid", "message": str(exc)}, 400)
        return json_response(report, WHATSAPP_STATUS_CODES.get(report["status"], 500))

    app = Starlette(
        # Starlette answers an unhandled error itself (then re-raises it for the
        # middleware to report): make that answer JSON, never a traceback.
        exception_handlers={Exception: _internal_error},
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/health/db", health_db, methods=["GET"]),
            Route("/health/whatsapp", health_whatsapp, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *routes,
        ],
    )
    return ErrorkitMiddleware(app)
