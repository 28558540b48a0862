"""The health API under a real uvicorn server on a loopback port, called with httpx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import test_whatsapp
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_whatsapp import seed_keys

from datalayer import AsyncDatabase, Database
from datalayer.api import create_app
from errorkit.testing import capture_events

Serve = Callable[[Any], str]

#: The WhatsApp tables emptied before and after (test_whatsapp's fixture).
wa_db = test_whatsapp.wa_db


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an ASGI app under uvicorn on a free 127.0.0.1 port; return its base URL."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread))
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            thread.join(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join()


@pytest.fixture(params=["sync", "async"])
def make_app(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``create_app`` on the given ``Database``, or on an ``AsyncDatabase`` of the same
    server and settings that the app opens in uvicorn's loop (as ``datalayer serve``)."""

    def make(db: Database, **kwargs: Any) -> Any:
        if request.param == "sync":
            return create_app(db, **kwargs)
        return create_app(AsyncDatabase(db._conninfo, db.settings), open_database=True, **kwargs)

    return make


def _wait_for(condition: Callable[[], bool], attempts: int = 200) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.025)


def _assert_clean(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    assert "password" not in response.text.lower()


def test_health_pings_the_database_and_echoes_the_request_id(
    db: Database, serve: Serve, make_app: Any
) -> None:
    base = serve(make_app(db))
    response = httpx.get(f"{base}/health", headers={"X-Request-ID": "req-abc-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-abc-123"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["latency_ms"] >= 0
    _assert_clean(response)
    generated = httpx.get(f"{base}/health").headers.get("x-request-id")
    assert generated


def test_health_db_reports_pool_budget_and_latency(
    db: Database, serve: Serve, make_app: Any
) -> None:
    base = serve(make_app(db))
    response = httpx.get(f"{base}/health/db")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["latency_ms"] >= 0
    assert body["pool"]["pool_max"] == db.settings.max_connections
    assert body["budget"]["max_connections"] > 0
    assert body["budget"]["verdict"] in ("under", "at", "over")
    _assert_clean(response)


@pytest.mark.parametrize(
    ("expired", "status", "code"),
    [(0, "healthy", 200), (150, "warning", 200), (600, "critical", 503)],
)
def test_whatsapp_health_status_codes_per_band(
    wa_db: Database, serve: Serve, make_app: Any, expired: int, status: str, code: int
) -> None:
    seed_keys(wa_db, expired, expired=True, session_prefix="s")
    base = serve(make_app(wa_db))
    response = httpx.get(f"{base}/health/whatsapp")
    assert response.status_code == code
    assert response.json()["status"] == status
    assert response.json()["expired_keys"] == expired
    _assert_clean(response)


def test_whatsapp_health_of_one_session_and_a_bad_session_id(
    wa_db: Database, serve: Serve, make_app: Any
) -> None:
    seed_keys(wa_db, 600, expired=True, session_prefix="s")
    base = serve(make_app(wa_db))
    response = httpx.get(f"{base}/health/whatsapp", params={"session_id": "nobody"})
    assert response.status_code == 200
    assert response.json()["session_id"] == "nobody"
    # The other sessions' 600 expired keys are not this session's.
    assert response.json()["expired_keys"] == 0
    assert response.json()["status"] == "healthy"
    bad = httpx.get(f"{base}/health/whatsapp", params={"session_id": "no spaces/allowed"})
    assert bad.status_code == 400
    assert bad.json()["status"] == "invalid"
    assert "no spaces" not in bad.text  # the refused input is not echoed


def test_unreachable_database(unreachable_db: Database, serve: Serve, make_app: Any) -> None:
    base = serve(make_app(unreachable_db))
    with capture_events() as events:
        whatsapp = httpx.get(f"{base}/health/whatsapp", timeout=30)
        health = httpx.get(f"{base}/health", timeout=30)
        health_db = httpx.get(f"{base}/health/db", timeout=30)
    assert whatsapp.status_code == 500
    assert whatsapp.json()["status"] == "error"
    assert health.status_code == 503
    assert health.json() == {"status": "error", "database": {"ok": False, "error": "transient"}}
    assert health_db.status_code == 503
    for response in (whatsapp, health, health_db):
        _assert_clean(response)
    # One event per failed check, never one per layer.
    operations = sorted(event["tags"]["operation"] for event in events)
    assert operations.count("check_session_health") == 1
    assert operations.count("ping_database") == 2


def test_unhandled_error_gives_json_500_and_one_event(
    db: Database, serve: Serve, make_app: Any
) -> None:
    def boom(request: Request) -> Response:
        raise RuntimeError("kaboom with password=hunter2")

    base = serve(make_app(db, routes=[Route("/boom", boom)]))
    with capture_events() as events:
        response = httpx.get(f"{base}/boom", headers={"X-Request-ID": "req-boom"})
        # Starlette sends its 500 before re-raising to the middleware, which reports
        # then: the event may land just after the response.
        _wait_for(lambda: len(events) >= 1)
        time.sleep(0.2)  # room for a second (wrong) event to show up
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-boom"
    assert "hunter2" not in response.text
    _assert_clean(response)
    assert isinstance(response.json(), dict)
    assert len(events) == 1
    assert events[0]["tags"]["component"] == "http"
    assert events[0]["tags"]["operation"] == "GET /boom"
    assert response.json() == {"error": "internal_error", "request_id": "req-boom"}


def test_unknown_route_is_404(db: Database, serve: Serve, make_app: Any) -> None:
    base = serve(make_app(db))
    assert httpx.get(f"{base}/nope").status_code == 404


def test_async_database_endpoints_are_coroutines_sync_ones_plain(db: Database) -> None:
    # Starlette runs a plain endpoint in its thread pool, a coroutine on the loop:
    # on an AsyncDatabase no request takes a thread.
    import inspect

    from starlette.routing import Route as StarletteRoute

    def kinds(app: Any) -> set[bool]:
        return {
            inspect.iscoroutinefunction(route.endpoint)
            for route in app.routes
            if isinstance(route, StarletteRoute)
        }

    assert kinds(create_app(AsyncDatabase(db._conninfo, db.settings))) == {True}
    assert kinds(create_app(db)) == {False}
