"""A small Starlette service that calls the datalayer facade, behind errorkit's middleware.

Run it:

    python examples/service_using_facade.py --port 8080
    curl -X PUT localhost:8080/companies/1 -d '{"title": "Salon"}'
    curl localhost:8080/companies/1
    curl localhost:8080/clients/by-phone/8-968-648-44-88?company_id=1
    curl -i localhost:8080/clients/by-phone/not-a-phone     # 400, a warning line
    curl -i localhost:8080/debug/fail                       # 500, one error line + event

It uses DATABASE_URL (or POSTGRES_*), else starts the embedded PostgreSQL.
Every response carries ``X-Request-ID``; every log line written while serving
a request carries the same ``request_id``.

What the service does NOT do is the point: no try/except around facade calls
and no logging of failures. The facade reports database failures once (and
returns None / [] for reads), ``ValidationError`` becomes a 400 here, and
anything unexpected is reported once by ``ErrorkitMiddleware`` and answered
with a JSON 500.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import errorkit
from datalayer import Database, DataLayer, ValidationError, migrate
from datalayer.validation import validate_optional_id
from errorkit.asgi import ErrorkitMiddleware

log = errorkit.get_logger("salon-service")


def as_json(value: Any) -> Any:
    """A model (or list of models) as JSON-ready data."""
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return json.loads(json.dumps(asdict(value), default=str)) if value is not None else None


def facade(request: Request) -> DataLayer:
    data_layer: DataLayer = request.app.state.data_layer
    return data_layer


# Plain `def` handlers: Starlette runs them in a thread pool, so the facade's blocking
# database calls never stall the event loop (the log context travels with them).


def health(request: Request) -> Response:
    report = facade(request).health_check(timeout=2.0)
    return JSONResponse(
        {"healthy": report.healthy, "latency_ms": report.latency_ms},
        status_code=200 if report.healthy else 503,
    )


def get_company(request: Request) -> Response:
    company = facade(request).get_company(request.path_params["company_id"])
    if company is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(as_json(company))


async def put_company(request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": "invalid", "message": "a JSON object"}, status_code=400)
    # Unknown or misspelt fields are a ValidationError (a 400), never dropped silently.
    company = await run_in_threadpool(
        facade(request).upsert_company, {**body, "company_id": request.path_params["company_id"]}
    )
    log.info("company_saved", company_id=company.company_id)
    return JSONResponse(as_json(company))


def client_by_phone(request: Request) -> Response:
    # An id from a query string: validated like the facade's own arguments (bad: a 400).
    company_id = validate_optional_id(request.query_params.get("company_id"), name="company_id")
    client = facade(request).get_client_by_phone(request.path_params["phone"], company_id)
    if client is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(as_json(client))


def services(request: Request) -> Response:
    found = facade(request).get_services(request.path_params["company_id"])
    return JSONResponse(as_json(found))


async def fail(request: Request) -> Response:
    """A bug, on purpose: see the one error line, the event and the JSON 500."""
    raise RuntimeError("this route is broken on purpose")


async def invalid_input(request: Request, exc: Exception) -> Response:
    # The facade already logged it as operation_rejected (a warning, no event).
    return JSONResponse({"error": "invalid", "message": str(exc)}, status_code=400)


def create_app(db: Database) -> Starlette:
    """The service: routes, a 400 for bad input, errorkit's middleware."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        errorkit.flush_suppressed()  # storm-control counts still held back
        db.close()

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/companies/{company_id:int}", get_company, methods=["GET"]),
            Route("/companies/{company_id:int}", put_company, methods=["PUT"]),
            Route("/companies/{company_id:int}/services", services),
            Route("/clients/by-phone/{phone}", client_by_phone),
            Route("/debug/fail", fail),
        ],
        # Inside Starlette's own error middleware: it answers a bug with its JSON 500
        # itself, so Starlette never sends a plain-text one.
        middleware=[Middleware(ErrorkitMiddleware)],
        exception_handlers={ValidationError: invalid_input},
        lifespan=lifespan,
    )
    app.state.data_layer = DataLayer(db)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="the example salon service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()

    errorkit.setup("salon-service")  # .env, JSON logs on stdout, Sentry if SENTRY_DSN is set
    db = Database.from_env()
    migrate(db)
    uvicorn.run(create_app(db), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
