"""Every errorkit test leaves global state (structlog, Sentry, settings) as it found it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import sentry_sdk
import structlog

from errorkit import _setup, _storm
from errorkit._config import settings


@pytest.fixture(autouse=True)
def _restore_global_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "SENTRY_DSN",
        "SENTRY_ENABLED",
        "ERRORKIT_LOG_LEVEL",
        "ERRORKIT_LOG_FORMAT",
        "ERRORKIT_SLOW_MS",
        "ERRORKIT_EVENTS_PER_MINUTE",
        "ERRORKIT_LOG_LINES_PER_MINUTE",
        "ERRORKIT_METRICS",
    ):
        monkeypatch.delenv(name, raising=False)
    config = structlog.get_config()
    saved_settings = dataclasses.replace(settings)
    storm = _storm.current()
    scope = sentry_sdk.get_global_scope()
    client = scope.client
    yield
    structlog.configure(**config)
    for field in dataclasses.fields(settings):
        setattr(settings, field.name, getattr(saved_settings, field.name))
    _storm.install(storm)
    if scope.client is not client:
        scope.client.close(timeout=0)
        scope.set_client(client if client.is_active() else None)
    _setup.reset_for_tests()
