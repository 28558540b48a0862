"""Test helpers: assert on what your code reports, without a network.

``capture_events()`` collects the Sentry events sent inside it (scrubbed by
the same ``before_send`` production uses, through an in-memory transport);
``capture_logs()`` collects log lines as dicts after the production
processors (scrubbing included). Both reset storm-control budgets on entry.
The pytest plugin exposes them as the ``errorkit_events`` and
``errorkit_logs`` fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sentry_sdk
import structlog
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from structlog.typing import EventDict, WrappedLogger

from errorkit import _storm
from errorkit._config import level_from_name, settings
from errorkit._logging import base_processors
from errorkit._sentry import client_options

__all__ = ["MemoryTransport", "capture_events", "capture_logs", "storm_control"]

# Never contacted: the in-memory transport replaces the network.
_PLACEHOLDER_DSN = "https://public@errorkit.invalid/1"


class MemoryTransport(Transport):
    """A Sentry transport that appends each event dict to a list."""

    def __init__(self, options: dict[str, Any] | None, sink: list[dict[str, Any]]) -> None:
        super().__init__(options)
        self.sink = sink

    def capture_envelope(self, envelope: Envelope) -> None:
        """Keep the events of ``envelope`` (sessions, transactions and profiles are dropped)."""
        for item in envelope.items:
            if item.type == "event":
                event = item.get_event()
                if event is not None:
                    self.sink.append(dict(event))


def _fresh_storm() -> _storm.StormControl:
    """Install fresh budgets (same limits and clock); return the control to restore later."""
    return _storm.install(_storm.current().fresh())


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect the Sentry events sent inside the block.

    If Sentry was initialised, its options (``before_send`` included) are
    reused with the transport swapped for an in-memory one; if not, errorkit's
    own production options are used. The previous client is restored on exit.
    """
    events: list[dict[str, Any]] = []
    previous = sentry_sdk.get_client()
    if previous.is_active():
        options = dict(previous.options)
        if options.get("event_scrubber") is not None:
            # The client resolved data_collection itself; passing the resolved value
            # back would switch its event scrubber off. Let the new client resolve it.
            options.pop("data_collection", None)
    else:
        options = client_options({}, dsn=_PLACEHOLDER_DSN)
    options["dsn"] = options.get("dsn") or _PLACEHOLDER_DSN
    options["traces_sample_rate"] = None
    options["profiles_sample_rate"] = None
    options["transport"] = MemoryTransport(options, events)
    client = sentry_sdk.Client(**options)
    scopes = [
        scope
        for scope in (
            sentry_sdk.get_global_scope(),
            sentry_sdk.get_isolation_scope(),
            sentry_sdk.get_current_scope(),
        )
        if scope is sentry_sdk.get_global_scope() or scope.client.is_active()
    ]
    saved = [(scope, scope.client) for scope in scopes]
    for scope in scopes:
        scope.set_client(client)
    previous_storm = _fresh_storm()
    try:
        yield events
    finally:
        _storm.install(previous_storm)
        for scope, old in saved:
            scope.set_client(old if old.is_active() else None)
        with suppress(Exception):
            client.close(timeout=0)


@contextmanager
def capture_logs(level: str = "debug") -> Iterator[list[dict[str, Any]]]:
    """Collect structlog lines at ``level`` or above as dicts (after scrubbing).

    errorkit's own debug lines (``operation_completed``) are produced inside
    the block when ``level`` is debug. The previous configuration is restored
    on exit.
    """
    lines: list[dict[str, Any]] = []
    numeric = level_from_name(level, "level")

    def collect(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        lines.append(dict(event_dict))
        raise structlog.DropEvent

    old_config = structlog.get_config()
    old_level = settings.log_level
    structlog.configure(
        processors=[*base_processors("json"), collect],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        context_class=dict,
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    settings.set_log_level(numeric)
    previous_storm = _fresh_storm()
    try:
        yield lines
    finally:
        _storm.install(previous_storm)
        settings.set_log_level(old_level)
        structlog.configure(**old_config)


@contextmanager
def storm_control(
    events_per_minute: int = 10,
    log_lines_per_minute: int = 60,
    *,
    clock: _storm.Clock | None = None,
    max_fingerprints: int = _storm.MAX_FINGERPRINTS,
) -> Iterator[_storm.StormControl]:
    """Install fresh storm-control budgets (with a clock a test can drive) for the block."""
    control = _storm.StormControl(
        events_per_minute,
        log_lines_per_minute,
        clock=clock if clock is not None else time.monotonic,
        max_fingerprints=max_fingerprints,
    )
    previous = _storm.install(control)
    try:
        yield control
    finally:
        _storm.install(previous)
