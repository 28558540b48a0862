"""Masking of personal data and secrets before anything leaves the process."""

from __future__ import annotations

import functools
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

FILTERED = "[Filtered]"

# Key names whose values are secret whatever they hold.
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|authori[sz]ation|cookie"
    r"|dsn|creds?$|credentials?|private[_-]?key|signature|session[_-]?key|set-cookie",
    re.IGNORECASE,
)
# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/?#\s@]*:)([^@\s/]+)(@)")
# password=..., "token": "...", api_key: ... inside free text (logs, reprs, conninfo).
# The value runs to whitespace, a quote or '&' (next URL query parameter): a libpq
# password may hold ';', ',' or ')', and stopping there leaked the rest of it.
_INLINE_SECRET = re.compile(
    r"""(?ix)
    (\b(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|authorization|cookie|dsn
       |access[_-]?key|private[_-]?key)['"]?\s*[=:]\s*['"]?)
    (?:bearer\s+|basic\s+)?
    ([^\s'"&]+)
    """
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of 10 to 15 digits, optionally split by spaces, dashes, dots or parentheses.
_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d(?:[\s().-]{0,2}\d){9,14}(?!\w)")
# Digit runs that are not phone numbers: dates, and IPv4 addresses (octets checked).
_NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

# Text none of the patterns above can match (each needs a digit, '@', ':' or '='):
# most keys and values of a log line, returned without running them.
_INERT = re.compile(r"[^\d@:=]*")

# A URL's path, or the target of an HTTP request line (access logs, httpx): user
# input, where a phone number can be a whole segment (/clients/79686484488), which
# _PHONE leaves alone after a '/' (file paths). Masked segment by segment.
_URL_PATH = re.compile(
    r"(?:\b[a-zA-Z][\w+.-]*://[^\s/]*|\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) )"
    r"(/[^\s\"'<>]*)"
)

_MAX_DEPTH = 12
_TOO_DEEP = "[nested too deep]"


@functools.lru_cache(maxsize=4096)  # the same few keys, on every log line and event
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a value that must never be shown."""
    return _SECRET_KEY.search(key) is not None


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _NOT_A_PHONE.search(text):
        return text
    if _IPV4.fullmatch(text) and all(int(part) <= 255 for part in text.split(".")):
        return text
    digits = sum(ch.isdigit() for ch in text)
    if digits < 10 or digits > 15:
        return text
    keep = 4
    out = []
    for ch in reversed(text):
        if ch.isdigit():
            out.append(ch if keep > 0 else "*")
            keep -= 1
        else:
            out.append(ch)
    return "".join(reversed(out))


def _mask_url_path(match: re.Match[str]) -> str:
    head = match.group(0)[: match.start(1) - match.start(0)]
    segments = match.group(1).split("/")
    return head + "/".join(_PHONE.sub(_mask_phone, segment) for segment in segments)


def scrub_text(text: str) -> str:
    """Mask secrets, e-mail addresses and phone numbers inside free text."""
    if not text or _INERT.fullmatch(text):
        return text
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***\3", text)
    if "/" in text:
        text = _URL_PATH.sub(_mask_url_path, text)
    text = _INLINE_SECRET.sub(r"\1***", text)
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_mask_phone, text)


def _walk(value: Any, depth: int, other: Callable[[Any], Any]) -> Any:
    """Mask strings and secret keys through containers; ``other`` maps every other leaf."""
    if isinstance(value, str):
        return scrub_text(value)
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return other(value)
    if depth >= _MAX_DEPTH:
        # Deeper than the walk goes: hide a container rather than pass it on unmasked.
        return _TOO_DEEP
    if isinstance(value, Mapping):
        # Keys are data too (a mapping keyed by phone number or e-mail address).
        return {
            (scrub_text(key) if isinstance(key, str) else key): (
                FILTERED
                if isinstance(key, str) and value_is_set(item) and is_secret_key(key)
                else _walk(item, depth + 1, other)
            )
            for key, item in value.items()
        }
    if isinstance(value, tuple):
        return tuple(_walk(item, depth + 1, other) for item in value)
    return [_walk(item, depth + 1, other) for item in value]


def _unchanged(value: Any) -> Any:
    return value


def scrub(value: Any) -> Any:
    """Return a copy of ``value`` with personal data and secrets masked.

    Phone numbers keep their last four digits, e-mail addresses become
    ``[email]``, passwords in connection strings become ``***``, and the values
    of keys that look secret (password, token, api_key, dsn, ...) become
    ``[Filtered]``. Mappings, lists, tuples and sets are walked; strings are
    masked; other values are returned unchanged.
    """
    return _walk(value, 0, _unchanged)


_PLAIN = (str, int, float, bool, type(None))


def _reprlib(limit: int) -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxstring = limit
    r.maxother = limit
    r.maxlong = min(limit, 400)
    r.maxlevel = 4
    r.maxdict = r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = 25
    return r


_reprs: dict[int, reprlib.Repr] = {}


def safe_repr(value: Any, limit: int = 512) -> str:
    """A bounded, scrubbed repr of ``value``; never raises."""
    try:
        r = _reprs.get(limit) or _reprs.setdefault(limit, _reprlib(limit))
        text = r.repr(value)
        # Masking keeps phone numbers' length, so scrub a little past the cut first.
        return scrub_text(text[: limit + 256])[:limit]
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def scrub_for_log(value: Any) -> Any:
    """Like :func:`scrub`, but any other object becomes its bounded, scrubbed repr.

    A renderer would otherwise print ``repr(obj)`` after masking ran, showing
    whatever the object holds (a model's phone number).
    """
    return _walk(value, 0, _plain_or_repr)


def _plain_or_repr(value: Any) -> Any:
    return value if isinstance(value, _PLAIN) else safe_repr(value)


def value_is_set(item: Any) -> bool:
    """A secret key holding None or "" is shown as it is: there is nothing to hide."""
    return item is not None and item != ""
