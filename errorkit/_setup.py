"""``setup()``: the one call an entry point makes before anything else."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import sentry_sdk
from dotenv import load_dotenv

from errorkit import _storm
from errorkit._config import Settings, level_from_name, settings
from errorkit._logging import LogFormat, LogStream, configure_structlog, unroute_stdlib_logging
from errorkit._report import flush_suppressed
from errorkit._sentry import client_options, protect_sentry, unprotect_for_tests

_lock = threading.Lock()
_last: tuple[Any, ...] | None = None
_sentry_key: tuple[Any, ...] | None = None

_FALSE = {"0", "false", "no", "off"}


def _log_format(raw: str) -> LogFormat:
    value = raw.strip().lower() or "json"
    if value not in ("json", "console"):
        raise ValueError(f"ERRORKIT_LOG_FORMAT must be 'json' or 'console', got {raw!r}")
    return "json" if value == "json" else "console"


def setup(
    service: str | None = None,
    *,
    env_file: str | os.PathLike[str] | None = ".env",
    log_format: LogFormat | None = None,
    log_level: str | None = None,
    log_stream: LogStream = "stdout",
    events_per_minute: int | None = None,
    log_lines_per_minute: int | None = None,
    slow_ms: float | None = None,
    metrics: bool | None = None,
) -> None:
    """Start errorkit for an entry point: ``.env``, then logging, then Sentry.

    1. Load ``env_file`` (if it exists) without overriding variables already set.
    2. Configure structlog: JSON lines on ``log_stream`` (a console renderer when
       ``ERRORKIT_LOG_FORMAT=console``), level from ``ERRORKIT_LOG_LEVEL``.
    3. Initialise Sentry from ``SENTRY_DSN`` (``SENTRY_ENABLED``,
       ``SENTRY_ENVIRONMENT``, ``SENTRY_RELEASE``, ``SENTRY_TRACES_SAMPLE_RATE``,
       ``SENTRY_PROFILES_SAMPLE_RATE``; server name from ``service`` or
       ``SERVICE_NAME``) with ``send_default_pii=False`` and the scrubbing
       ``before_send``. Without a DSN nothing is sent and everything works.

    Storm-control budgets come from ``ERRORKIT_EVENTS_PER_MINUTE`` /
    ``ERRORKIT_LOG_LINES_PER_MINUTE`` unless given here (0 = no limit).
    Prometheus metrics (:mod:`errorkit.metrics`) are counted unless ``metrics``
    is False or ``ERRORKIT_METRICS=false``.
    Calling it again with the same arguments and environment changes nothing;
    a bad variable raises ValueError naming it.
    """
    global _last
    with _lock:
        if env_file is not None and Path(env_file).is_file():
            load_dotenv(env_file, override=False)
        environ = dict(os.environ)
        key = (
            service, log_format, log_level, log_stream, events_per_minute,
            log_lines_per_minute, slow_ms, metrics, tuple(sorted(
                (k, v) for k, v in environ.items() if k.startswith(("ERRORKIT_", "SENTRY_"))
                or k == "SERVICE_NAME"
            )),
        )  # fmt: skip
        if key == _last:
            return
        fresh = Settings.from_env(environ)
        if log_level is not None:
            fresh.set_log_level(level_from_name(log_level, "log_level"))
        if events_per_minute is not None:
            fresh.events_per_minute = events_per_minute
        if log_lines_per_minute is not None:
            fresh.log_lines_per_minute = log_lines_per_minute
        if slow_ms is not None:
            fresh.slow_ms = slow_ms
        if metrics is not None:
            fresh.metrics = bool(metrics)
        fmt = log_format or _log_format(environ.get("ERRORKIT_LOG_FORMAT", ""))
        service_name = service or environ.get("SERVICE_NAME") or None
        options = _sentry_options(environ, service_name)

        settings.slow_ms = fresh.slow_ms
        settings.repr_limit = fresh.repr_limit
        settings.metrics = fresh.metrics
        settings.set_log_level(fresh.log_level)
        settings.events_per_minute = fresh.events_per_minute
        settings.log_lines_per_minute = fresh.log_lines_per_minute
        _storm.install(
            _storm.StormControl(settings.events_per_minute, settings.log_lines_per_minute)
        )
        configure_structlog(
            log_format=fmt, level=settings.log_level, stream=log_stream, service=service_name
        )
        _init_sentry(options)
        protect_sentry()
        _register_exit_flush()
        _last = key


_exit_flush_registered = False


def _register_exit_flush() -> None:
    """Report held-back storm counts at interpreter exit.

    Registered after Sentry's own exit hook, so it runs first (atexit is last in,
    first out) while the client can still send.
    """
    global _exit_flush_registered
    if _exit_flush_registered:
        return
    atexit.register(_flush_at_exit)
    _exit_flush_registered = True


def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):
        flush_suppressed()


def _sentry_options(environ: dict[str, str], service: str | None) -> dict[str, Any] | None:
    dsn = environ.get("SENTRY_DSN", "").strip()
    enabled = environ.get("SENTRY_ENABLED", "true").strip().lower() not in _FALSE
    if not dsn or not enabled:
        return None
    return client_options(environ, dsn=dsn, service=service)


def _init_sentry(options: dict[str, Any] | None) -> None:
    global _sentry_key
    if options is None:
        return
    key = tuple((k, v) for k, v in options.items() if k not in ("before_send", "integrations"))
    if key == _sentry_key and sentry_sdk.get_client().is_active():
        return
    sentry_sdk.init(**options)
    _sentry_key = key


def reset_for_tests() -> None:
    """Forget what setup() did, so the next call configures from scratch."""
    global _last, _sentry_key
    with _lock:
        _last = None
        _sentry_key = None
        unroute_stdlib_logging()
        unprotect_for_tests()
