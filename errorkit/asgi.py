"""``ErrorkitMiddleware``: plain ASGI middleware, for Starlette, FastAPI or any ASGI app."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

import structlog

from errorkit._boundary import Boundary
from errorkit._report import active
from errorkit._scrub import scrub_text

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["ErrorkitMiddleware"]

_MAX_REQUEST_ID = 128


def _request_id(scope: Scope, header: bytes) -> str:
    for name, value in scope.get("headers") or ():
        if name.lower() == header:
            text = str(value.decode("latin-1")).strip()
            if text and len(text) <= _MAX_REQUEST_ID and text.isprintable():
                return text
    return uuid.uuid4().hex


def _masked_path(scope: Scope) -> str:
    """The request path with personal data masked segment by segment.

    A URL path is user input (``/clients/by-phone/79686484488``), but scrub_text
    leaves digits after a '/' alone (file paths); masking each segment on its own
    keeps a phone number out of the log context, the operation and the fingerprint.
    """
    path = str(scope.get("path") or "/")
    return "/".join(scrub_text(segment) for segment in path.split("/"))


def _route(scope: Scope, masked_path: str) -> str:
    """The route template (``/clients/{id}``) when the framework matched one, else the path."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path or masked_path)


class ErrorkitMiddleware:
    """Bind a request id and method/path to the log context; report an unhandled error once.

    The request id comes from the ``X-Request-ID`` header (or is new) and is
    returned in the response. An exception escaping the app is reported with
    component ``http`` and operation ``"<METHOD> <route>"`` (once: an inner
    boundary that already reported it is respected) and answered with a JSON
    500 carrying the request id, unless the response had already started. A
    5xx page the app sent before raising (Starlette's and FastAPI's text 500)
    is replaced by that JSON 500.
    """

    def __init__(
        self, app: ASGIApp, *, header: str = "X-Request-ID", component: str = "http"
    ) -> None:
        self.app = app
        self.header = header
        self._header = header.lower().encode("latin-1")
        self.component = component

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope, self._header)
        method = str(scope.get("method", "GET"))
        response_started = False
        # A 5xx page the app sends before raising (Starlette's ServerErrorMiddleware
        # does: a text 500, then re-raises) is held back until the app's outcome is
        # known: an exception replaces it with the JSON 500; a return sends it as is.
        held: list[Message] | None = None
        header_pair = (self._header, request_id.encode("latin-1"))

        async def send_held() -> None:
            nonlocal held, response_started
            messages, held = held or [], None
            response_started = True
            for message in messages:
                await send(message)

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started, held
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers") or ()
                    if name.lower() != self._header
                ]
                headers.append(header_pair)
                message["headers"] = headers
                if int(message.get("status", 200)) >= 500:
                    held = [message]
                    return
                response_started = True
            elif held is not None:
                held.append(message)
                if message.get("more_body", False):
                    await send_held()  # a streaming response, not an error page
                return
            await send(message)

        path = _masked_path(scope)
        boundary = Boundary(self.component, f"{method} {path}", reraise=False)
        started = perf_counter()
        with structlog.contextvars.bound_contextvars(
            request_id=request_id, method=method, path=path
        ):
            # At this frame: a task the request starts inherits the node (its
            # failures name the route) but knows the middleware is not on its stack.
            token = active.set((boundary, active.get(), sys._getframe()))
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception as exc:
                boundary.operation = f"{method} {_route(scope, path)}"
                boundary._failed(exc, started, None, (), {})
                held = None
                if response_started:
                    return
                await self._internal_error(send, request_id, header_pair)
            else:
                if held is not None:
                    await send_held()
            finally:
                active.reset(token)

    @staticmethod
    async def _internal_error(
        send: Send, request_id: str, request_id_header: tuple[bytes, bytes]
    ) -> None:
        body = json.dumps({"error": "internal_error", "request_id": request_id}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    request_id_header,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
