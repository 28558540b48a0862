"""One Sentry event made safe to send: scrubbed, and bounded in size whatever it holds.

Used by the boundary's own event processor, by the process-wide one that
``protect_sentry()`` installs, and by errorkit's ``before_send``: the same rules
whoever initialised Sentry and whatever its options say.

- Personal data and secrets are masked in every string and key (free text,
  messages, exception values, tags, contexts, extra, breadcrumbs, request data),
  and the values of keys that look secret are filtered.
- Frame local variables are left out: a text scrubber cannot tell a client's
  name from any other string, and they carry raw arguments (10 MB payloads); the
  boundary sends the call's arguments bound, redacted and scrubbed instead.
- Every string is cut to ``STRING_LIMIT`` characters, every list and mapping to
  ``MAX_ITEMS`` entries, the walk to ``MAX_NODES`` values and ``MAX_DEPTH``
  levels, and once the text already kept is past ``TEXT_BUDGET`` (JSON bytes,
  estimated) longer strings are replaced by a marker: the event stays well under
  Sentry's 1 MB whatever the arguments.
- Anything that is not plain data becomes its bounded, scrubbed repr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, cast

import sentry_sdk
from sentry_sdk._types import AnnotatedValue
from sentry_sdk.types import Event, Hint

from errorkit._scrub import FILTERED, is_secret_key, safe_repr, scrub_text, value_is_set

STRING_LIMIT = 4096
KEY_LIMIT = 256
MAX_ITEMS = 200
MAX_NODES = 4000
MAX_DEPTH = 16
TEXT_BUDGET = 256 * 1024
# Past the budget, strings up to this length are still kept (ids, names of things).
SHORT = 64
CUT = "[cut: event size limit]"
TOO_DEEP = "[nested too deep]"

# Structure, identifiers and SDK metadata: never personal data, and masking them
# would break Sentry's grouping and trace links. Bounded, not scrubbed.
STRUCTURAL_KEYS = frozenset(
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
# Written by the SDK itself (installed packages, integrations, exception mechanism):
# passed on as they are, not walked.
SDK_METADATA = frozenset({"sdk", "modules", "debug_meta", "_meta", "mechanism"})
# Below these keys everything is user data: no key is structural there.
DATA_KEYS = frozenset({"vars", "extra", "contexts", "data", "tags", "request", "user", "logentry"})
# Frame local variables (outside user data, where "vars" is just a key).
_LOCALS = "vars"
# What to keep first when the budget runs short: the failure itself, then its context.
_FIRST = (
    "event_id",
    "timestamp",
    "level",
    "platform",
    "fingerprint",
    "tags",
    "exception",
    "message",
    "logentry",
    "contexts",
    "threads",
    "stacktrace",
    "request",
    "user",
    "extra",
    "breadcrumbs",
)
_ORDER = {key: rank for rank, key in enumerate(_FIRST)}
_PLAIN = (int, float, bool, type(None), dt.datetime, dt.date)


def _json_size(text: str) -> int:
    """Bytes ``text`` takes in the JSON Sentry sends, or a little more."""
    if text.isascii() and text.isprintable():
        return len(text) + 3
    # json.dumps escapes control and non-ASCII characters: \uXXXX per UTF-16 unit.
    return len(text.encode("utf-16-le")) * 3 + 3


@functools.lru_cache(maxsize=1024)  # the same few keys in every event
def _clean_key(key: str) -> str:
    return scrub_text(key[: KEY_LIMIT + 256])[:KEY_LIMIT]


# Source lines around each frame: code, but code may hold a literal secret. The same
# lines come back with every failure at the same place, so their scrubbed form is kept.
_SOURCE_KEYS = frozenset({"pre_context", "context_line", "post_context"})


@functools.lru_cache(maxsize=4096)
def _clean_source_line(line: str) -> str:
    if len(line) > STRING_LIMIT:
        return scrub_text(line[: STRING_LIMIT + 256])[:STRING_LIMIT] + "..."
    return scrub_text(line)


class _Walk:
    """One pass over one event: a budget of text and of values, spent in order."""

    __slots__ = ("budget", "nodes")

    def __init__(self) -> None:
        self.budget = TEXT_BUDGET
        self.nodes = MAX_NODES

    def text(self, value: str, scrub: bool, limit: int = STRING_LIMIT) -> str:
        if len(value) > SHORT and self.budget <= 0:
            return CUT
        if len(value) > limit:
            # Masking keeps a phone number's length: scrub a little past the cut first.
            value = value[: limit + 256]
            if scrub:
                value = scrub_text(value)
            value = value[:limit] + "..."
        elif scrub:
            value = scrub_text(value)
        if not value.isascii() and self.budget <= 0:
            return CUT
        self.budget -= _json_size(value)
        return value

    def node(self, value: Any, depth: int, scrub: bool, in_data: bool) -> Any:
        self.nodes -= 1
        if isinstance(value, str):
            return self.text(value, scrub)
        if isinstance(value, _PLAIN):
            return value
        if self.nodes <= 0:
            return CUT
        if isinstance(value, AnnotatedValue):
            return AnnotatedValue(
                self.node(value.value, depth, scrub, in_data), dict(value.metadata)
            )
        if isinstance(value, Mapping | list | tuple | set | frozenset) and depth > MAX_DEPTH:
            # Deeper than the walk goes: hide a container rather than send it unmasked.
            return TOO_DEEP
        if isinstance(value, Mapping):
            return self.mapping(value, depth, scrub, in_data)
        if isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            if len(items) > MAX_ITEMS:
                half = MAX_ITEMS // 2  # the first and the last (outermost, innermost frames)
                items = items[:half] + items[-half:]
            return [self.node(item, depth + 1, scrub, in_data) for item in items]
        repr_text = safe_repr(value, STRING_LIMIT)  # bounded and scrubbed
        return self.text(repr_text, False)

    def source(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > SHORT and self.budget <= 0:
                return CUT
            line = _clean_source_line(value)
            self.budget -= _json_size(line)
            return line
        if isinstance(value, list | tuple):
            return [self.source(item) for item in list(value)[:MAX_ITEMS]]
        return self.node(value, MAX_DEPTH, True, True)

    def mapping(self, value: Mapping[Any, Any], depth: int, scrub: bool, in_data: bool) -> Any:
        out: dict[Any, Any] = {}
        for count, (key, item) in enumerate(value.items()):
            if count >= MAX_ITEMS:
                break
            if not isinstance(key, str):
                # Sentry's serializer would str() it unmasked: plain keys stay, others go by repr.
                plain = isinstance(key, _PLAIN)
                name = key if plain else self.text(safe_repr(key, KEY_LIMIT), False)
                out[name] = self.node(item, depth + 1, scrub, in_data)
                continue
            if not in_data:
                if key == _LOCALS:
                    continue
                if key in _SOURCE_KEYS and scrub:
                    out[key] = self.source(item)
                    continue
                if key in STRUCTURAL_KEYS:
                    kept = item if key in SDK_METADATA else self.node(item, depth + 1, False, False)
                    out[key] = kept
                    continue
            # Keys are data too (a mapping keyed by phone number or e-mail address).
            name = _clean_key(key) if scrub else key[:KEY_LIMIT]
            self.budget -= _json_size(name)
            if scrub and is_secret_key(key) and value_is_set(item):
                out[name] = FILTERED
                continue
            out[name] = self.node(item, depth + 1, scrub, in_data or key in DATA_KEYS)
        return out


def protect_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` scrubbed and bounded (see the module docstring); may raise."""
    walk = _Walk()
    kept: dict[str, Any] = {}
    for key in sorted(event, key=lambda k: _ORDER.get(k, len(_ORDER))):
        if key == _LOCALS:
            continue
        if key in SDK_METADATA:
            kept[key] = event[key]
        elif key in STRUCTURAL_KEYS:
            kept[key] = walk.node(event[key], 1, False, False)
        else:
            in_data = key in DATA_KEYS
            kept[walk.text(key, True, KEY_LIMIT)] = walk.node(event[key], 1, True, in_data)
    return kept


def fallback_event(event: Mapping[str, Any], error: BaseException) -> dict[str, Any]:
    """What is left of an event whose protection failed: no free text at all."""
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
        "values": [
            {"type": str(v.get("type"))[:KEY_LIMIT], "value": "[scrubbing failed]"}
            for v in values[:MAX_ITEMS]
        ]
    }
    kept["message"] = f"errorkit: event scrubbing failed ({type(error).__name__})"
    return kept


# Set in the hint of an event a boundary's processor protected: the processor runs
# last on the boundary's own scope, so before_send need not walk the event again.
PROTECTED_HINT = "errorkit_protected"


def protected(event: dict[str, Any]) -> dict[str, Any] | None:
    """``event`` scrubbed and bounded; cut down to no free text if that fails; else None."""
    try:
        return protect_event(event)
    except Exception as exc:
        try:
            return fallback_event(event, exc)
        except Exception:
            return None


def _protect_boundary_event(event: Event, hint: Hint) -> Event | None:
    result = protected(cast(dict[str, Any], event))
    hint[PROTECTED_HINT] = True
    return cast(Event | None, result)


# True while a boundary captures its event: the process-wide processor leaves that
# event to the boundary's own (which runs after it, and after the application's).
boundary_sending: ContextVar[bool] = ContextVar("errorkit_boundary_sending", default=False)


@contextlib.contextmanager
def boundary_scope() -> Iterator[sentry_sdk.Scope]:
    """A scope of the boundary's own (forked from the current one) that protects its event."""
    with sentry_sdk.new_scope() as scope:
        scope.add_event_processor(_protect_boundary_event)
        token = boundary_sending.set(True)
        try:
            yield scope
        finally:
            boundary_sending.reset(token)
