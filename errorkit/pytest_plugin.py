"""pytest fixtures shipped with errorkit (registered through the pytest11 entry point)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from errorkit.testing import capture_events, capture_logs


@pytest.fixture
def errorkit_events() -> Iterator[list[dict[str, Any]]]:
    """The Sentry events (dicts, scrubbed) sent during the test."""
    with capture_events() as events:
        yield events


@pytest.fixture
def errorkit_logs() -> Iterator[list[dict[str, Any]]]:
    """The structlog lines (dicts, scrubbed) written during the test, debug and up."""
    with capture_logs() as lines:
        yield lines
