"""ErrorkitMiddleware under a real Starlette app and a real FastAPI app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
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
