"""A FastAPI service on the async data layer, behind errorkit's middleware.

Run it:

    python examples/fastapi_service.py --port 8080
    curl -X PUT localhost:8080/companies/1 -H 'content-type: application/json' \\
         -d '{"title": "Salon"}'
    curl localhost:8080/companies/1              # 200, the salon
    curl -i localhost:8080/companies/2           # 404
    curl -i localhost:8080/companies/0           # 400, a warning line, no event
    curl -i localhost:8080/debug/db-timeout      # 503 + Retry-After, one event
    curl -i localhost:8080/debug/fail            # 500, one event

It uses DATABASE_URL (or POSTGRES_*), else starts the embedded PostgreSQL.
The lifespan opens an ``AsyncDatabase`` inside the server's event loop (as
psycopg_pool asks) and migrates it; routes get the ``AsyncDataLayer`` as a
dependency. Nothing blocks the loop: no thread per request.

As in the Starlette example, the service does no error handling of its own:
the facade (and the transaction) reports a database failure once, and the
handlers below only choose the HTTP answer per kind of outcome. A bug is
reported once by ``ErrorkitMiddleware``, added the ordinary way, which answers
a JSON 500 with the request id.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

import errorkit
from datalayer import AsyncDatabase, AsyncDataLayer, ValidationError, migrate_async
from datalayer.errors import QueryTimeoutError, TransientError
from errorkit.asgi import ErrorkitMiddleware

log = errorkit.get_logger("salon-api")

#: Seconds a client should wait before retrying after a database failure.
RETRY_AFTER_S = 5


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(asdict(value), default=str))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncDatabase.from_env() as db:
        await migrate_async(db)
        # strict: a failed read is reported (once, by the facade) and raised, so the
        # service can answer 503 rather than a misleading 404.
        app.state.data_layer = AsyncDataLayer(db, strict=True)
        yield
    errorkit.flush_suppressed()  # storm-control counts still held back


def data_layer(request: Request) -> AsyncDataLayer:
    facade: AsyncDataLayer = request.app.state.data_layer
    return facade


Facade = Annotated[AsyncDataLayer, Depends(data_layer)]

app = FastAPI(lifespan=lifespan)
app.add_middleware(ErrorkitMiddleware)


@app.exception_handler(ValidationError)
async def invalid_input(request: Request, exc: ValidationError) -> JSONResponse:
    # Already logged by the facade as operation_rejected (a warning, no event).
    return JSONResponse({"error": "invalid", "message": str(exc)}, status_code=400)


@app.exception_handler(TransientError)
@app.exception_handler(QueryTimeoutError)
async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Already reported once by the boundary it crossed; here only the answer.
    return JSONResponse(
        {"error": "unavailable", "kind": errorkit.classify(exc)},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@app.get("/health")
async def health(facade: Facade) -> JSONResponse:
    report = await facade.health_check(timeout=2.0)
    return JSONResponse(
        {"healthy": report.healthy, "latency_ms": report.latency_ms},
        status_code=200 if report.healthy else 503,
    )


@app.get("/companies/{company_id}")
async def get_company(company_id: int, facade: Facade) -> JSONResponse:
    company = await facade.get_company(company_id)
    if company is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(as_json(company))


@app.put("/companies/{company_id}")
async def put_company(company_id: int, body: dict[str, Any], facade: Facade) -> JSONResponse:
    company = await facade.upsert_company({**body, "company_id": company_id})
    log.info("company_saved", company_id=company.company_id)
    return JSONResponse(as_json(company))


@app.get("/debug/db-timeout")
async def db_timeout(facade: Facade) -> JSONResponse:
    """A database failure, on purpose: a statement past its timeout."""
    async with facade.db.transaction() as conn:
        await conn.execute("SET LOCAL statement_timeout = 50")
        await conn.execute("SELECT pg_sleep(2)")
    return JSONResponse({"unreachable": True})


@app.get("/debug/fail")
async def fail() -> JSONResponse:
    """A bug, on purpose: one error line, one event and the JSON 500."""
    raise RuntimeError("this route is broken on purpose")


def main() -> None:
    parser = argparse.ArgumentParser(description="the example FastAPI salon service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    errorkit.setup("salon-api")  # .env, JSON logs on stdout, Sentry if SENTRY_DSN is set
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
