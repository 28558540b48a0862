"""The health HTTP API: a Starlette app behind errorkit's ASGI middleware.

``GET /health`` (liveness plus a database ping), ``GET /health/db`` (pool
figures, connection budget, ping latency), ``GET /health/whatsapp`` (the
auth-state health check: 200 healthy or warning, 503 critical, 500 error) and
``GET /metrics`` (Prometheus; 404 when metrics are off).
Bodies are JSON; failures carry an error kind, never a traceback or a
connection string. Served by ``datalayer serve``, on an ``AsyncDatabase``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from datalayer._metrics import AsyncKeyCounts, watch_pool, watch_whatsapp_keys
from datalayer.errors import ValidationError
from datalayer.whatsapp import SessionHealth, check_session_health, check_session_health_async
from errorkit import captured, classify
from errorkit import metrics as errorkit_metrics
from errorkit.asgi import ErrorkitMiddleware

if TYPE_CHECKING:
    from datalayer._database import Database
    from datalayer._database_async import AsyncDatabase

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


def _ping_body(error: Exception | None, latency_ms: float | None) -> dict[str, Any]:
    if error is not None or latency_ms is None:
        return {"ok": False, "error": classify(error) if error is not None else "internal"}
    return {"ok": True, "latency_ms": round(latency_ms, 3)}


def ping_database(db: Database) -> dict[str, Any]:
    """``{"ok": True, "latency_ms": ...}`` or ``{"ok": False, "error": kind}``; never raises.

    A failed ping is reported once through errorkit (component ``api``).
    """
    latency_ms: float | None = None
    with captured("api", "ping_database", reraise=False) as block:
        latency_ms = db.ping()
    return _ping_body(block.error, latency_ms)


async def ping_database_async(db: AsyncDatabase) -> dict[str, Any]:
    """:func:`ping_database` for an ``AsyncDatabase``."""
    latency_ms: float | None = None
    async with captured("api", "ping_database", reraise=False) as block:
        latency_ms = await db.ping()
    return _ping_body(block.error, latency_ms)


def _report(ping: dict[str, Any], pool: dict[str, Any] | None) -> dict[str, Any]:
    return {"status": "ok" if ping["ok"] else "error", "database": ping, "pool": pool}


def _pool(db: Database | AsyncDatabase) -> dict[str, Any] | None:
    pool: dict[str, Any] | None = None
    with captured("api", "pool_stats", reraise=False):
        pool = dict(db.stats())
    return pool


def database_report(db: Database) -> dict[str, Any]:
    """Ping, pool statistics and the connection budget (when it can be computed)."""
    report = _report(ping_database(db), _pool(db))
    # Without a server there is no budget to read; one failure report is enough.
    budget: dict[str, Any] | None = None
    if report["database"]["ok"]:
        with captured("api", "pool_budget", reraise=False):
            budget = db.budget().as_dict()
    report["budget"] = budget
    report["checked_at"] = datetime.now(UTC).isoformat()
    return report


async def database_report_async(db: AsyncDatabase) -> dict[str, Any]:
    """:func:`database_report` for an ``AsyncDatabase``."""
    report = _report(await ping_database_async(db), _pool(db))
    budget: dict[str, Any] | None = None
    if report["database"]["ok"]:
        async with captured("api", "pool_budget", reraise=False):
            budget = (await db.budget()).as_dict()
    report["budget"] = budget
    report["checked_at"] = datetime.now(UTC).isoformat()
    return report


def metrics(request: Request) -> Response:
    """A Prometheus scrape of the process (sync: Starlette runs it in a worker thread,
    since a scrape may count WhatsApp keys in the database)."""
    if not errorkit_metrics.enabled():
        return json_response({"error": "metrics_disabled"}, 404)
    body, content_type = errorkit_metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def _health_body(ping: dict[str, Any]) -> Response:
    ok = bool(ping["ok"])
    return json_response({"status": "ok" if ok else "error", "database": ping}, 200 if ok else 503)


def _db_body(report: dict[str, Any]) -> Response:
    return json_response(report, 200 if report["status"] == "ok" else 503)


def _whatsapp_body(report: SessionHealth) -> Response:
    return json_response(report, WHATSAPP_STATUS_CODES.get(report["status"], 500))


def _invalid(exc: ValidationError) -> Response:
    return json_response({"status": "invalid", "message": str(exc)}, 400)


def _session_id(request: Request) -> str | None:
    return request.query_params.get("session_id") or None


def _sync_routes(db: Database) -> list[BaseRoute]:
    # Plain functions: Starlette runs them in its thread pool, off the event loop.
    def health(request: Request) -> Response:
        return _health_body(ping_database(db))

    def health_db(request: Request) -> Response:
        return _db_body(database_report(db))

    def health_whatsapp(request: Request) -> Response:
        try:
            return _whatsapp_body(check_session_health(db, session_id=_session_id(request)))
        except ValidationError as exc:
            return _invalid(exc)

    watch_whatsapp_keys(db)
    return [
        Route("/health", health, methods=["GET"]),
        Route("/health/db", health_db, methods=["GET"]),
        Route("/health/whatsapp", health_whatsapp, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def _async_routes(db: AsyncDatabase) -> list[BaseRoute]:
    # Coroutines: they run on the event loop, no thread per request.
    async def health(request: Request) -> Response:
        return _health_body(await ping_database_async(db))

    async def health_db(request: Request) -> Response:
        return _db_body(await database_report_async(db))

    async def health_whatsapp(request: Request) -> Response:
        try:
            report = await check_session_health_async(db, session_id=_session_id(request))
        except ValidationError as exc:
            return _invalid(exc)
        return _whatsapp_body(report)

    key_counts = AsyncKeyCounts(db)
    watch_whatsapp_keys(key_counts)

    async def async_metrics(request: Request) -> Response:
        # The scrape itself is sync (prometheus_client); the key counts it reports
        # are refreshed here, awaited, at most once per refresh period.
        if errorkit_metrics.enabled():
            await key_counts.refresh()
        return metrics(request)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/health/db", health_db, methods=["GET"]),
        Route("/health/whatsapp", health_whatsapp, methods=["GET"]),
        Route("/metrics", async_metrics, methods=["GET"]),
    ]


def create_app(
    db: Database | AsyncDatabase,
    *,
    routes: Sequence[BaseRoute] = (),
    open_database: bool = False,
) -> Starlette:
    """The health API for ``db``, a ``Database`` or an ``AsyncDatabase``.

    On an ``AsyncDatabase`` the endpoints are coroutines (no thread per request).
    The caller owns ``db`` and closes it, unless ``open_database=True``: then the
    app opens it at startup and closes it at shutdown (its lifespan), which is how
    an ``AsyncDatabase`` gets opened inside the server's own event loop. ``routes``
    are mounted beside the health endpoints, for a service that wants its own
    under the same middleware. ``db``'s pool figures and WhatsApp key counts join
    the process's metrics (``GET /metrics``).
    """
    from datalayer._database_async import AsyncDatabase

    watch_pool(db)
    health_routes = _async_routes(db) if isinstance(db, AsyncDatabase) else _sync_routes(db)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(db, AsyncDatabase):
            await db.open()
            try:
                yield
            finally:
                await db.close()
        else:
            db.open()
            try:
                yield
            finally:
                db.close()

    return Starlette(
        # Inside Starlette's ServerErrorMiddleware, the middleware answers an unhandled
        # error itself (JSON 500 with the request id): Starlette never sees it.
        middleware=[Middleware(ErrorkitMiddleware)],
        routes=[*health_routes, *routes],
        lifespan=lifespan if open_database else None,
    )
