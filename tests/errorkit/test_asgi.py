"""ErrorkitMiddleware under a real Starlette app and a real FastAPI app."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import errorkit
from errorkit import captured
from errorkit.asgi import ErrorkitMiddleware


class Boom(Exception):
    pass


@captured("data-layer", "get_client")
def get_client(client_id: int) -> dict[str, int]:
    raise Boom(f"client {client_id} unavailable")


async def ok(request: Request) -> JSONResponse:
    errorkit.get_logger("views").info("serving")
    return JSONResponse({"ok": True})


async def crash(request: Request) -> JSONResponse:
    raise Boom("handler crashed")


async def crash_inside_boundary(request: Request) -> JSONResponse:
    return JSONResponse(get_client(int(request.path_params["client_id"])))


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/ok", ok),
            Route("/crash", crash),
            Route("/clients/{client_id:int}", crash_inside_boundary),
        ]
    )


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok_view() -> dict[str, bool]:
        errorkit.get_logger("views").info("serving")
        return {"ok": True}

    @app.get("/crash")
    async def crash_view() -> dict[str, bool]:
        raise Boom("handler crashed")

    @app.get("/clients/{client_id}")
    def client_view(client_id: int) -> dict[str, int]:
        return get_client(client_id)

    return app


APPS = [pytest.param(starlette_app, id="starlette"), pytest.param(fastapi_app, id="fastapi")]


@pytest.mark.parametrize("make_app", APPS)
def test_request_id_is_bound_and_returned(
    make_app: Any, errorkit_logs: list[dict[str, Any]]
) -> None:
    client = TestClient(ErrorkitMiddleware(make_app()))
    response = client.get("/ok", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    (line,) = [line for line in errorkit_logs if line["event"] == "serving"]
    assert line["request_id"] == "req-123"
    assert line["method"] == "GET" and line["path"] == "/ok"

    fresh = client.get("/ok")
    assert len(fresh.headers["x-request-id"]) == 32


@pytest.mark.parametrize("make_app", APPS)
def test_unhandled_error_reported_once_as_http_and_answered_500(
    make_app: Any, errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    client = TestClient(ErrorkitMiddleware(make_app()), raise_server_exceptions=True)
    response = client.get("/crash", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    # Starlette and FastAPI send a text 500 of their own before re-raising: the
    # middleware answers the JSON 500 instead, whatever the framework.
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "internal_error", "request_id": "req-500"}
    (event,) = errorkit_events
    assert event["tags"]["component"] == "http"
    assert event["tags"]["operation"] == "GET /crash"
    assert event["contexts"]["errorkit"]["log_context"]["request_id"] == "req-500"
    (line,) = [line for line in errorkit_logs if line["event"] == "operation_failed"]
    assert line["request_id"] == "req-500"


def test_a_5xx_the_app_returns_is_sent_as_it_is(errorkit_events: list[dict[str, Any]]) -> None:
    """Only an exception replaces a 5xx page; one the app answers on purpose passes."""

    async def unavailable(request: Request) -> JSONResponse:
        return JSONResponse({"retry_after": 30}, status_code=503)

    async def streamed(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial "
            yield b"failure"

        return StreamingResponse(chunks(), status_code=500, media_type="text/plain")

    app = Starlette(routes=[Route("/unavailable", unavailable), Route("/streamed", streamed)])
    client = TestClient(ErrorkitMiddleware(app))
    response = client.get("/unavailable", headers={"X-Request-ID": "req-503"})
    assert (response.status_code, response.json()) == (503, {"retry_after": 30})
    assert response.headers["x-request-id"] == "req-503"
    streamed_response = client.get("/streamed")
    assert (streamed_response.status_code, streamed_response.text) == (500, "partial failure")
    assert errorkit_events == []


@pytest.mark.parametrize("make_app", APPS)
def test_error_reported_by_an_inner_boundary_is_not_reported_again(
    make_app: Any, errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    client = TestClient(ErrorkitMiddleware(make_app()))
    response = client.get("/clients/7", headers={"X-Request-ID": "req-7"})
    assert response.status_code == 500
    (event,) = errorkit_events
    assert event["tags"]["component"] == "data-layer"
    assert event["contexts"]["errorkit"]["boundaries"][0].startswith("http.GET ")
    assert event["contexts"]["errorkit"]["boundaries"][-1] == "data-layer.get_client"
    assert len([line for line in errorkit_logs if line["event"] == "operation_failed"]) == 1


def test_route_template_names_the_operation(errorkit_events: list[dict[str, Any]]) -> None:
    import asyncio

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=ErrorkitMiddleware(starlette_app()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/clients/9")

    response = asyncio.run(main())
    assert response.status_code == 500
    # the inner boundary reported it; the middleware's own name uses the template
    assert errorkit_events[0]["contexts"]["errorkit"]["boundaries"][0] == "http.GET /clients/9"


def test_plain_asgi_app_gets_json_500(errorkit_events: list[dict[str, Any]]) -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        raise Boom("bare app")

    client = TestClient(ErrorkitMiddleware(bare))
    response = client.get("/anything", headers={"X-Request-ID": "r1"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "request_id": "r1"}
    assert errorkit_events[0]["tags"]["operation"] == "GET /anything"


def test_phone_number_in_an_unrouted_path_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    from errorkit.testing import capture_events

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        errorkit.get_logger("views").info("looking up")
        raise Boom("bare app")

    errorkit.setup(env_file=None, log_format="json")
    client = TestClient(ErrorkitMiddleware(bare))
    capsys.readouterr()
    with capture_events() as events:
        assert client.get("/clients/by-phone/79686484488").status_code == 500
    out = capsys.readouterr().out
    (event,) = events
    assert event["tags"]["operation"] == "GET /clients/by-phone/*******4488"
    assert "9686484488" not in json.dumps(event)  # tags, fingerprint, log context
    lines = [json.loads(line) for line in out.splitlines()]
    assert {line["path"] for line in lines if "path" in line} == {"/clients/by-phone/*******4488"}
    assert "9686484488" not in out  # the test client's own httpx line included


def test_json_log_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    errorkit.setup(env_file=None, log_format="json")
    client = TestClient(ErrorkitMiddleware(starlette_app()))
    capsys.readouterr()
    client.get("/clients/3", headers={"X-Request-ID": "req-json"})
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    (failed,) = [line for line in lines if line["event"] == "operation_failed"]
    for key in ("timestamp", "level", "event", "component", "operation", "duration_ms"):
        assert key in failed
    assert failed["request_id"] == "req-json"
    assert failed["component"] == "data-layer"


# --- added the ordinary way, under a real uvicorn -------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def uvicorn_serving(app: Any) -> Iterator[tuple[str, _Records]]:
    """``app`` served by a real uvicorn on a free loopback port; uvicorn's error log kept."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    records = _Records()
    error_log = logging.getLogger("uvicorn.error")
    error_log.addHandler(records)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", records
    finally:
        server.should_exit = True
        thread.join(10)
        error_log.removeHandler(records)
        sock.close()


def _with_added_middleware(make_app: Any) -> Any:
    app = make_app()
    app.add_middleware(ErrorkitMiddleware)
    return app


@pytest.mark.parametrize("make_app", APPS)
def test_add_middleware_answers_json_500_once_under_uvicorn(
    make_app: Any, errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    with uvicorn_serving(_with_added_middleware(make_app)) as (url, uvicorn_log):
        response = httpx.get(f"{url}/crash", headers={"X-Request-ID": "req-added"})
        ok = httpx.get(f"{url}/ok")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-added"
    assert response.json() == {"error": "internal_error", "request_id": "req-added"}
    assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 32
    (event,) = errorkit_events
    assert (event["tags"]["component"], event["tags"]["operation"]) == ("http", "GET /crash")
    (line,) = [line for line in errorkit_logs if line["event"] == "operation_failed"]
    assert line["request_id"] == "req-added"
    # Neither Starlette's ServerErrorMiddleware nor uvicorn saw the exception.
    assert [r for r in uvicorn_log.records if r.exc_info or r.levelno >= logging.ERROR] == []


def test_a_failure_in_a_task_started_by_a_request_is_reported_once_with_its_id(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    done = asyncio.Event()

    @captured("jobs", "notify")
    async def notify() -> None:
        try:
            raise Boom("notification failed")
        finally:
            done.set()

    async def fire_and_forget(request: Request) -> JSONResponse:
        background.add(asyncio.create_task(notify()))
        await done.wait()
        return JSONResponse({"queued": True})

    background: set[asyncio.Task[None]] = set()
    app = Starlette(routes=[Route("/notify", fire_and_forget)])
    app.add_middleware(ErrorkitMiddleware)
    client = TestClient(app)
    response = client.get("/notify", headers={"X-Request-ID": "req-bg"})
    assert response.status_code == 200
    (event,) = errorkit_events
    assert event["contexts"]["errorkit"]["boundaries"] == ["http.GET /notify", "jobs.notify"]
    assert event["contexts"]["errorkit"]["log_context"]["request_id"] == "req-bg"
    (line,) = [line for line in errorkit_logs if line["event"] == "operation_failed"]
    assert line["request_id"] == "req-bg"


@pytest.mark.parametrize("awaited", [False, True], ids=["fire-and-forget", "awaited"])
def test_sentry_asyncio_integration_event_for_a_request_task_is_kept_once(awaited: bool) -> None:
    # A task with no boundary of its own, under Sentry's AsyncioIntegration: the
    # integration's event is its report (with the request id), never dropped, and a
    # handler awaiting the task (the middleware then meets the same error) adds nothing.
    import sentry_sdk
    from sentry_sdk.integrations.asyncio import AsyncioIntegration, patch_asyncio

    from errorkit._sentry import client_options
    from errorkit.testing import capture_events

    async def plain_task() -> None:
        await asyncio.sleep(0)
        raise Boom("task bug")

    async def handler(request: Request) -> JSONResponse:
        task = asyncio.create_task(plain_task())
        await asyncio.wait([task])
        if awaited:
            await task
        return JSONResponse({"ok": True})

    async def main() -> httpx.Response:
        patch_asyncio()  # this loop's tasks, as sentry_sdk.init inside a loop does
        app = Starlette(routes=[Route("/job", handler)])
        app.add_middleware(ErrorkitMiddleware)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/job", headers={"X-Request-ID": "req-aio"})

    options = client_options({}, dsn="https://public@errorkit.invalid/1")
    options["integrations"] = [*options["integrations"], AsyncioIntegration()]
    sentry_sdk.init(**options)  # what a service does; capture_events reuses its options
    with capture_events() as events:
        response = asyncio.run(main())
    assert response.status_code == (500 if awaited else 200)
    (event,) = events
    assert event["exception"]["values"][-1]["value"] == "task bug"
    assert event["contexts"]["errorkit"]["log_context"]["request_id"] == "req-aio"
    assert event["contexts"]["errorkit"]["boundaries"] == ["http.GET /job"]
