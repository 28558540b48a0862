"""Reading captured Sentry events: tags, kinds, and storm-control accounting."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Event = Mapping[str, Any]


def tags(event: Event) -> dict[str, Any]:
    raw = event.get("tags") or {}
    if isinstance(raw, Mapping):
        return dict(raw)
    return {k: v for k, v in raw}  # the SDK may send tags as pairs


def errorkit_context(event: Event) -> dict[str, Any]:
    return dict((event.get("contexts") or {}).get("errorkit") or {})


def is_failure(event: Event) -> bool:
    """An event for one reported exception (not a storm-control summary)."""
    return bool((event.get("exception") or {}).get("values"))


def exception_type(event: Event) -> str:
    values = (event.get("exception") or {}).get("values") or []
    return str(values[-1].get("type")) if values else ""


def of(events: Iterable[Event], component: str, operation: str | None = None) -> list[Event]:
    return [
        e
        for e in events
        if tags(e).get("component") == component
        and (operation is None or tags(e).get("operation") == operation)
    ]


def accounted(events: Iterable[Event]) -> int:
    """Failures the events stand for: one each, plus what storm control held back.

    A failure event carries the count held back before it (``suppressed``); a
    summary event (sent by ``flush_suppressed``) carries only a count.
    """
    total = 0
    for event in events:
        held_back = int(errorkit_context(event).get("suppressed") or 0)
        total += held_back + (1 if is_failure(event) else 0)
    return total
