"""Error kinds: what sort of failure an exception is, for tags and log lines."""

from __future__ import annotations

import threading
from collections.abc import Callable

KINDS = frozenset({"invalid", "not_found", "conflict", "transient", "timeout", "internal"})
# Kinds that describe the environment rather than a bug: reported at level warning.
WARNING_KINDS = frozenset({"transient", "timeout"})

Classifier = Callable[[BaseException], "str | None"]

_classifiers: list[Classifier] = []
_lock = threading.Lock()


def register_classifier(fn: Classifier) -> Classifier:
    """Teach :func:`classify` about a package's own exceptions.

    ``fn(exc)`` returns one of the kinds, or None for "no opinion". The most
    recently registered classifier is asked first; registering the same
    function twice is a no-op. Returns ``fn`` so it can be used as a decorator.
    """
    with _lock:
        if fn not in _classifiers:
            _classifiers.insert(0, fn)
    return fn


def unregister_classifier(fn: Classifier) -> None:
    """Forget a classifier registered with :func:`register_classifier`."""
    with _lock:
        if fn in _classifiers:
            _classifiers.remove(fn)


def _builtin_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "transient"
    if isinstance(exc, ValueError):
        return "invalid"
    return "internal"


def classify(exc: BaseException) -> str:
    """Return the kind of ``exc``: invalid, not_found, conflict, transient, timeout or internal.

    Registered classifiers are asked first; a classifier that raises or answers
    something outside the known kinds is ignored.
    """
    for fn in tuple(_classifiers):
        try:
            kind = fn(exc)
        except Exception:
            continue
        if kind in KINDS:
            return kind
    return _builtin_kind(exc)
