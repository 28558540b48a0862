"""Sentry: client options shared by setup() and errorkit.testing, and the scrubbing before_send."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from errorkit._boundary import adopt_unhandled, boundary_on_stack
from errorkit._config import env_float
from errorkit._report import reported_event_id
from errorkit._scrub import FILTERED, is_secret_key, scrub_text, value_is_set

# Structure, identifiers and SDK metadata: never personal data, and masking them
# would break Sentry's grouping and trace links.
_STRUCTURAL_KEYS = frozenset(
    {
        "event_id",
        "timestamp",
        "start_timestamp",
        "trace_id",
        "span_id",
        "parent_span_id",
        "fingerprint",
        "platform",
        "sdk",
        "modules",
        "debug_meta",
        "level",
        "release",
        "environment",
        "server_name",
        "filename",
        "abs_path",
        "module",
        "function",
        "lineno",
        "colno",
        "in_app",
        "mechanism",
        "type",
        "_meta",
    }
)
_MAX_DEPTH = 16


# Below these keys everything is user data: no key is structural there.
_DATA_KEYS = frozenset({"vars", "extra", "contexts", "data", "tags", "request", "user", "logentry"})


def _scrub_node(value: Any, depth: int, in_data: bool) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if depth > _MAX_DEPTH:
        # Deeper than the walk goes: hide a container rather than send it unmasked.
        return "[nested too deep]" if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                if not in_data and key in _STRUCTURAL_KEYS:
                    out[key] = item
                    continue
                if is_secret_key(key) and value_is_set(item):
                    out[scrub_text(key)] = FILTERED
                    continue
                # Keys are data too (a mapping keyed by phone number or e-mail address).
                out[scrub_text(key)] = _scrub_node(item, depth + 1, in_data or key in _DATA_KEYS)
                continue
            out[key] = _scrub_node(item, depth + 1, in_data)
        return out
    if isinstance(value, list | tuple):
        return [_scrub_node(item, depth + 1, in_data) for item in value]
    return value


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """Mask personal data and secrets anywhere in a Sentry event.

    Covers the message, exception values, tags, contexts, extra, breadcrumbs,
    request data and frame variables; leaves identifiers and code locations.
    """
    scrubbed: dict[str, Any] = _scrub_node(event, 0, False)
    return scrubbed


def _fallback_event(event: Mapping[str, Any], error: BaseException) -> dict[str, Any]:
    """What is left of an event whose scrubbing failed: no free text at all."""
    kept: dict[str, Any] = {
        key: event[key]
        for key in ("event_id", "timestamp", "level", "platform", "fingerprint", "sdk")
        if key in event
    }
    tags = event.get("tags")
    if isinstance(tags, Mapping):
        kept["tags"] = {
            k: v
            for k, v in tags.items()
            if k in ("component", "operation", "error.kind") and isinstance(v, str)
        }
    values = (event.get("exception") or {}).get("values") or []
    kept["exception"] = {
        "values": [{"type": v.get("type"), "value": "[scrubbing failed]"} for v in values]
    }
    kept["message"] = f"errorkit: event scrubbing failed ({type(error).__name__})"
    return kept


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
    """Sentry ``before_send``: every event leaves the process scrubbed, or cut down.

    Unhandled-error events that Sentry's own integrations raise for a failure an
    errorkit boundary reports are dropped (exactly once).
    """
    try:
        if _left_to_a_boundary(event, hint):
            return None
    except Exception:
        pass
    try:
        return scrub_event(event)
    except Exception as exc:
        try:
            return _fallback_event(event, exc)
        except Exception:
            return None


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
