"""The call's arguments as a report shows them: bound by name, scrubbed, bounded.

Bound only on failure (the success path never pays for ``inspect.signature``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from errorkit._config import settings
from errorkit._scrub import FILTERED, is_secret_key, safe_repr, scrub, value_is_set

if TYPE_CHECKING:
    from errorkit._boundary import Boundary


def safe_value(name: str, value: Any) -> str:
    """A bounded, scrubbed text for one argument; never raises."""
    try:
        if is_secret_key(name) and value_is_set(value):
            return FILTERED
        if isinstance(value, Mapping | list | tuple) and len(value) <= 100:
            value = scrub(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return safe_repr(value, settings.repr_limit)


def _bind(
    boundary: Boundary, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind the call's arguments to names (self/cls left out); raw values."""
    func = boundary._func
    if func is None:
        return {}
    try:
        signature = boundary._signature
        if signature is None:
            signature = boundary._signature = inspect.signature(func)
        if instance is not None and boundary._takes_instance:
            bound = signature.bind_partial(instance, *args, **kwargs)
            first = next(iter(signature.parameters))
            return {k: v for k, v in bound.arguments.items() if k != first}
        return dict(signature.bind_partial(*args, **kwargs).arguments)
    except Exception:
        named: dict[str, Any] = {f"arg{i}": a for i, a in enumerate(args)}
        named.update(kwargs)
        return named


def capture_arguments(
    boundary: Boundary, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, str]:
    raw = _bind(boundary, instance, args, kwargs)
    extra = boundary.extra
    problem: str | None = None
    try:
        if callable(extra):
            produced = extra(raw)
            raw = dict(produced) if produced is not None else {}
        elif extra is not None:
            raw.update(extra)
    except Exception as exc:
        problem = f"<extra failed: {type(exc).__name__}>"
    captured = {str(name): safe_value(str(name), value) for name, value in raw.items()}
    if problem is not None:
        captured["extra_error"] = problem
    return captured
