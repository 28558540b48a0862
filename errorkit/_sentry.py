"""Sentry: what errorkit does to events, and the client options setup() uses.

Every event leaves the process scrubbed and bounded (errorkit._event), whoever
initialised Sentry:

- a boundary's own event by an event processor on the scope it captures in
  (``boundary_scope``), whatever the client's options say;
- every other event (Sentry's integrations: FastAPI/Starlette, logging,
  threading, a bare ``capture_exception``) by a process-wide event processor
  that ``protect_sentry()`` switches on, or by errorkit's ``before_send`` when
  errorkit initialised Sentry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any, cast

import sentry_sdk
from sentry_sdk.scope import add_global_event_processor
from sentry_sdk.types import Event, Hint

from errorkit._boundary import adopt_unhandled, boundary_on_stack
from errorkit._config import env_float
from errorkit._event import PROTECTED_HINT, boundary_sending, protected
from errorkit._report import reported_event_id


def _left_to_a_boundary(event: dict[str, Any], hint: Mapping[str, Any]) -> bool:
    """True for an unhandled-exception event from a Sentry integration that errorkit owns.

    Framework integrations (Starlette, FastAPI, ...) capture unhandled errors
    themselves. Inside an errorkit boundary that would be a second event for one
    failure (and could claim it first, without the boundary's tags): the
    boundary reports it, or already has.
    """
    if "errorkit" in (event.get("contexts") or {}):
        return False
    exc_info = hint.get("exc_info")
    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
    if not isinstance(exc, Exception):
        return False
    if reported_event_id(exc) is not None:
        return True
    values = (event.get("exception") or {}).get("values") or []
    unhandled = any((v.get("mechanism") or {}).get("handled") is False for v in values)
    if not unhandled:
        return False
    if boundary_on_stack():
        return True
    # A task or thread started inside a boundary (a request), failing outside any
    # of its own: no boundary will see this exception here, so this event is its
    # one report (marked, so a parent awaiting the task adds nothing).
    adopt_unhandled(event, exc)
    return False


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Sentry ``before_send``: every event leaves the process scrubbed and bounded, or cut down.

    Unhandled-error events that Sentry's own integrations raise for a failure an
    errorkit boundary reports are dropped (exactly once).
    """
    if hint.get(PROTECTED_HINT):
        return event  # a boundary's own event, protected by the boundary
    try:
        if _left_to_a_boundary(event, hint):
            return None
    except Exception:
        pass
    return protected(event)


# --- protect_sentry ---------------------------------------------------------------------------

_lock = threading.Lock()
_protecting = False
_installed = False


def _protect_process_event(event: Event, hint: Hint) -> Event | None:
    """The process-wide event processor: inert until protect_sentry() is called."""
    if not _protecting or boundary_sending.get():
        return event
    if event.get("type") in ("transaction", "check_in"):
        return event
    client = sentry_sdk.get_client()
    if client.options.get("before_send") is before_send:
        return event  # errorkit initialised this client: its before_send runs last, and does it
    raw = cast(dict[str, Any], event)
    try:
        if _left_to_a_boundary(raw, hint):
            return None
    except Exception:
        pass
    if client.options.get("attach_stacktrace"):
        _attach_stacktrace(raw)
    return cast(Event | None, protected(raw))


def _attach_stacktrace(event: dict[str, Any]) -> None:
    """Attach the stack the client would attach after the processors ran, without locals."""
    if "exception" in event or "stacktrace" in event or "threads" in event:
        return
    with contextlib.suppress(Exception):
        from sentry_sdk.utils import current_stacktrace

        stacktrace = current_stacktrace(include_local_variables=False)
        event["threads"] = {
            "values": [{"stacktrace": stacktrace, "crashed": False, "current": True}]
        }


def protect_sentry() -> None:
    """Scrub and bound every Sentry event of this process, whoever initialised Sentry.

    For an application that calls ``sentry_sdk.init`` itself: from now on the
    events Sentry's own integrations send (FastAPI/Starlette, logging,
    threading, a bare ``capture_exception``) are scrubbed like a boundary's
    (personal data and secrets masked, frame local variables left out, every
    string and the whole event bounded), and an unhandled error a boundary
    already reported is not sent a second time. Sentry is not re-initialised:
    this adds a process-wide event processor, and the application's own
    ``before_send`` still runs after it. Idempotent; safe before or after
    ``sentry_sdk.init``. ``setup()`` calls it. A boundary's own events are
    protected without it.
    """
    global _protecting, _installed
    with _lock:
        if not _installed:
            add_global_event_processor(_protect_process_event)
            _installed = True
        _protecting = True


def unprotect_for_tests() -> None:
    """Switch the process-wide protection off again (the processor stays, inert)."""
    global _protecting
    _protecting = False


def client_options(
    environ: Mapping[str, str], *, dsn: str | None, service: str | None = None
) -> dict[str, Any]:
    """The options errorkit initialises Sentry with (also used by capture_events)."""
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    return {
        "dsn": dsn,
        "environment": environ.get("SENTRY_ENVIRONMENT") or None,
        "release": environ.get("SENTRY_RELEASE") or None,
        "server_name": service or environ.get("SERVICE_NAME") or None,
        "traces_sample_rate": env_float(environ, "SENTRY_TRACES_SAMPLE_RATE", 0.1, maximum=1),
        "profiles_sample_rate": env_float(environ, "SENTRY_PROFILES_SAMPLE_RATE", 0.1, maximum=1),
        # send_default_pii stays at its default, False: sentry-sdk 2.x deprecates
        # passing it explicitly (data_collection replaces it), and the effect is the same.
        "before_send": before_send,
        # Frame locals hold raw arguments (phone numbers, 10 MB payloads); the
        # boundary sends them bound, scrubbed and cut in its `errorkit` context instead.
        "include_local_variables": False,
        "max_value_length": 4096,
        # Log records become breadcrumbs only: the boundary sends the one event,
        # a `logger.error(..., exc_info=True)` on the same path must not send a second.
        "integrations": [LoggingIntegration(level=logging.INFO, event_level=None)],
        # Boundaries mark what they report, which is the deduplication that matters;
        # Sentry's own (last exception seen) would swallow the boundary's event when
        # an integration saw the same exception first.
        "disabled_integrations": [DedupeIntegration()],
    }
