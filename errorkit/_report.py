"""The failure path: what one boundary reports about one exception, exactly once."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
import structlog

from errorkit import _metrics, _storm
from errorkit._arguments import capture_arguments
from errorkit._classify import WARNING_KINDS, classify
from errorkit._config import settings
from errorkit._event import boundary_scope
from errorkit._scrub import scrub, scrub_text

if TYPE_CHECKING:
    from errorkit._boundary import Boundary

_log = structlog.get_logger("errorkit")

# Attributes set on an exception once a boundary has dealt with it.
_REPORTED = "__errorkit_event_id__"  # reported as a failure (value: event id or "")
_REJECTED = "__errorkit_rejected__"  # logged as an expected rejection

# Boundaries entered as context managers (and the ASGI middleware): (boundary,
# parent node, the frame running the `with` block or None). Decorated calls are not
# recorded here: the success path stays free of it; on failure their wrapper frames
# are found on the stack instead (see boundary_chain).
Node = tuple["Boundary", "Node | None", "FrameType | None"]
active: ContextVar[Node | None] = ContextVar("errorkit_active_boundary", default=None)

# Code objects of the decorator wrappers; filled in by errorkit._boundary.
WRAPPER_CODES: set[CodeType] = set()

_MAX_CHAIN = 32
_MESSAGE_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class Failure:
    """One exception met by one boundary, as the ``reraise`` policy sees it.

    ``instance`` is the bound ``self`` (or ``cls``) of a decorated method,
    else None. ``reported`` is False when an inner boundary already reported
    this failure (or it is ``expected``).
    """

    exception: Exception
    component: str
    operation: str
    instance: Any = None
    event_id: str | None = None
    duration_ms: float = 0.0
    reported: bool = True


def _mark(exc: BaseException, attribute: str, value: str) -> None:
    # An exception type that refuses attributes has nothing to remember.
    with contextlib.suppress(Exception):
        setattr(exc, attribute, value)


def reported_event_id(exc: BaseException) -> str | None:
    """The event id (or "") if ``exc`` or an exception in its cause/context chain was reported."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        mark = getattr(current, _REPORTED, None)
        if isinstance(mark, str):
            return mark
        if current.__cause__ is not None:
            todo.append(current.__cause__)
        if current.__context__ is not None:
            todo.append(current.__context__)
    return None


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _label(boundary: Boundary) -> str:
    return f"{boundary.component}.{boundary.operation}"


def enclosing_boundaries(frame: FrameType | None) -> list[Boundary]:
    """The boundaries around ``frame``, innermost first.

    Walks the stack for decorator wrapper frames, placing context-manager
    boundaries at the frame that runs their block; those entered outside this
    stack (a parent task, the middleware) come last.
    """
    pending: list[tuple[Boundary, FrameType | None]] = []
    node = active.get()
    while node is not None and len(pending) < _MAX_CHAIN:
        pending.append((node[0], node[2]))
        node = node[1]
    at_frame: dict[int, list[Boundary]] = {}
    for entered, block_frame in pending:
        if block_frame is not None:
            at_frame.setdefault(id(block_frame), []).append(entered)
    found: list[Boundary] = []
    placed: set[int] = set()
    depth = 0
    while frame is not None and depth < 1000:
        if frame.f_code in WRAPPER_CODES:
            wrapper_self = frame.f_locals.get("self")
            if wrapper_self is not None:
                found.append(wrapper_self)
        here = at_frame.get(id(frame))
        if here:
            found.extend(here)
            placed.update(id(b) for b in here)
        frame = frame.f_back
        depth += 1
    found.extend(b for b, _ in pending if id(b) not in placed)
    return found


def boundary_chain() -> list[str]:
    """The names of the boundaries enclosing the failing code, outermost first."""
    names = [_label(b) for b in reversed(enclosing_boundaries(sys._getframe(1)))]
    return names[-_MAX_CHAIN:]


# --- reporting -----------------------------------------------------------------------------


def line_fields(boundary: Boundary, duration_ms: float) -> dict[str, Any]:
    """The fields every log line of a boundary starts with."""
    return {
        "component": boundary.component,
        "operation": boundary.operation,
        "duration_ms": round(duration_ms, 3),
    }


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return scrub_text(text[: _MESSAGE_LIMIT + 256])[:_MESSAGE_LIMIT]


def _log_context() -> dict[str, Any]:
    try:
        ctx = structlog.contextvars.get_contextvars()
        return dict(scrub(ctx)) if ctx else {}
    except Exception:
        return {}


def report_rejection(boundary: Boundary, exc: Exception, duration_ms: float) -> None:
    if getattr(exc, _REJECTED, False) or reported_event_id(exc) is not None:
        return
    _mark(exc, _REJECTED, "1")
    _metrics.count_rejection(boundary.component, boundary.operation)
    _log.warning(
        "operation_rejected",
        **line_fields(boundary, duration_ms),
        error_type=_type_name(exc),
        error_kind=classify(exc),
        error_message=_message(exc),
    )


def report_failure(
    boundary: Boundary,
    exc: Exception,
    duration_ms: float,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[str | None, bool]:
    """Report ``exc`` once: one Sentry event and one error line (storm budgets allowing).

    Returns the Sentry event id (None when nothing was sent) and whether this
    boundary reported it (False: an inner boundary already had).
    """
    previous = reported_event_id(exc)
    if previous is not None:
        if settings.debug:
            _log.debug(
                "operation_failure_propagated",
                **line_fields(boundary, duration_ms),
                error_type=_type_name(exc),
            )
        return (previous or None), False
    _mark(exc, _REPORTED, "")
    kind = classify(exc)
    _metrics.count_failure(boundary.component, boundary.operation, kind)
    type_name = _type_name(exc)
    key: Hashable = (boundary.component, boundary.operation, type_name, kind)
    storm = _storm.current()
    evicted_events: list[tuple[Hashable, int]] = []
    event_id: str | None = None
    if sentry_sdk.get_client().is_active():
        decision, evicted_events = storm.admit_event(key)
        if decision.send:
            try:
                event_id = _send_event(
                    boundary,
                    exc,
                    kind,
                    type_name,
                    duration_ms,
                    decision.suppressed,
                    instance,
                    args,
                    kwargs,
                )
            except Exception:  # Sentry trouble must not cost the log line
                event_id = None
            if event_id:
                _mark(exc, _REPORTED, event_id)
            else:
                storm.event_not_sent(key, decision.suppressed)
        else:
            _metrics.count_suppressed(boundary.component, boundary.operation, "event")
    line, evicted_lines = storm.admit_log_line(key)
    if line.suppressed:
        _log_suppressed(boundary.component, boundary.operation, type_name, kind, line.suppressed)
    if line.send:
        _log.error(
            "operation_failed",
            **line_fields(boundary, duration_ms),
            error_type=type_name,
            error_kind=kind,
            error_message=_message(exc),
            sentry_event_id=event_id,
            exc_info=exc,
        )
    else:
        _metrics.count_suppressed(boundary.component, boundary.operation, "log")
    if evicted_events or evicted_lines:
        report_suppressed(evicted_events, evicted_lines)
    return event_id, True


def _send_event(
    boundary: Boundary,
    exc: Exception,
    kind: str,
    type_name: str,
    duration_ms: float,
    suppressed: int,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str | None:
    context: dict[str, Any] = {
        "duration_ms": round(duration_ms, 3),
        "arguments": capture_arguments(boundary, instance, args, kwargs),
        "boundaries": boundary_chain(),
        "suppressed": suppressed,
    }
    log_context = _log_context()
    if log_context:
        context["log_context"] = log_context
    # Captured in a scope of its own whose processor scrubs and bounds the event,
    # whatever options the application initialised Sentry with.
    with boundary_scope() as scope:
        return scope.capture_exception(
            exc,
            tags={
                "component": boundary.component,
                "operation": boundary.operation,
                "error.kind": kind,
            },
            contexts={"errorkit": context},
            fingerprint=[boundary.component, boundary.operation, type_name],
            level="warning" if kind in WARNING_KINDS else "error",
        )


def _log_suppressed(component: str, operation: str, type_name: str, kind: str, count: int) -> None:
    _log.warning(
        "operation_failures_suppressed",
        component=component,
        operation=operation,
        error_type=type_name,
        error_kind=kind,
        suppressed=count,
    )


def _send_suppressed_event(
    component: str, operation: str, type_name: str, kind: str, count: int
) -> None:
    with boundary_scope() as scope:
        scope.capture_message(
            f"{count} failures of {component}.{operation} ({type_name}) were not reported "
            "individually (storm control)",
            level="warning",
            tags={"component": component, "operation": operation, "error.kind": kind},
            contexts={"errorkit": {"suppressed": count, "boundaries": [], "arguments": {}}},
            fingerprint=[component, operation, type_name],
        )


def report_suppressed(
    events: list[tuple[Hashable, int]], lines: list[tuple[Hashable, int]]
) -> None:
    """Report held-back counts that no later failure will carry (flush, eviction)."""
    for key, count in events:
        with contextlib.suppress(Exception):
            _send_suppressed_event(*_key_parts(key), count)
    for key, count in lines:
        with contextlib.suppress(Exception):
            _log_suppressed(*_key_parts(key), count)


def _key_parts(key: Hashable) -> tuple[str, str, str, str]:
    """(component, operation, exception type, error kind) of a storm-control key."""
    component, operation, type_name, kind = cast(tuple[str, str, str, str], key)
    return component, operation, type_name, kind


def flush_suppressed() -> None:
    """Report every count storm control is holding back, now.

    Each fingerprint with held-back events gets one Sentry event (level
    warning, same fingerprint, ``suppressed`` in its ``errorkit`` context);
    each with held-back log lines one ``operation_failures_suppressed`` line.
    Call it at shutdown so the numbers add up.
    """
    events, lines = _storm.current().drain()
    report_suppressed(events, lines)


def reraise_decision(
    boundary: Boundary,
    exc: Exception,
    instance: Any,
    event_id: str | None,
    duration_ms: float,
    reported: bool,
) -> bool:
    policy: bool | Callable[[Failure], bool] = boundary.reraise
    if not callable(policy):
        return bool(policy)
    failure = Failure(
        exception=exc,
        component=boundary.component,
        operation=boundary.operation,
        instance=instance,
        event_id=event_id,
        duration_ms=duration_ms,
        reported=reported,
    )
    try:
        return bool(policy(failure))
    except Exception:
        # A broken policy must not hide the failure: the caller gets the original error.
        return True
