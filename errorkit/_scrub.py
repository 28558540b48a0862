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
# Every pattern below stays linear in the length of the text (a 10 MB string is
# scrubbed in well under a second; benchmarks/scrub_throughput.py measures it):
# - each begins with a literal or one character class, so the regex engine skips
#   ahead to candidate positions in C instead of trying a match at every position;
# - where a match must not start inside a word, the check is a fixed-width
#   lookbehind placed *after* that first character (before it, it would hide the
#   first character from the engine's skip-ahead);
# - runs are consumed possessively (`*+`, `++`), so no attempt re-reads a run.
# tests/errorkit/test_scrub.py checks these rules on every pattern.


def _first_letter_alternation(words: tuple[str, ...]) -> str:
    """``[pP...](?:(?<=[pP])(?i:ass|wd)|...)``: keywords led by one character class."""
    by_letter: dict[str, list[str]] = {}
    for word in words:
        by_letter.setdefault(word[0], []).append(word[1:])
    letters = "".join(sorted(by_letter))
    rests = "|".join(
        f"(?<=[{letter}{letter.upper()}])(?i:{'|'.join(rest)})"
        for letter, rest in sorted(by_letter.items())
    )
    return f"[{letters}{letters.upper()}](?<![a-zA-Z0-9][{letters}{letters.upper()}])(?:{rests})"


# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(://[^:/?#\s@]*+:)([^@\s/]++)(@)")
# password=..., "token": "...", api_key: ... inside free text (logs, reprs, conninfo).
# The value runs to whitespace, a quote or '&' (next URL query parameter): a libpq
# password may hold ';', ',' or ')', and stopping there leaked the rest of it.
# A keyword may end a longer name (access_token, db_password): only a letter or a
# digit before it rules it out.
_INLINE_SECRET = re.compile(
    "("
    + _first_letter_alternation(
        (
            r"pass(?:word|wd)?",
            "pwd",
            r"private[_-]?key",
            "secret",
            "signature",
            "token",
            r"api[_-]?key",
            "apikey",
            "authorization",
            r"access[_-]?key",
            "cookie",
            "dsn",
        )
    )
    + r"""['"]?\s*+[=:]\s*+['"]?)(?i:bearer\s++|basic\s++)?([^\s'"&]++)"""
)
# Texts longer than this are first searched for the keywords (str.find is much faster
# than the regex engine trying every letter a keyword starts with).
_LONG = 4096
_SECRET_WORDS = (
    "pass",
    "pwd",
    "private",
    "secret",
    "signature",
    "token",
    "api",
    "authoriz",
    "access",
    "cookie",
    "dsn",
)
# An e-mail address: an RFC 5322 local part (any script: \w is Unicode), '@', and a
# domain whose last label starts with a letter (.com, .рф, .xn--p1ai). Found from its
# '@' (a literal the engine skips to); the local part is read backwards from there.
_EMAIL_DOMAIN = re.compile(r"@[\w-]++(?:\.[\w-]++)*\.[^\W\d_][\w-]*+")
_LOCAL_RUN = re.compile(r"[\w.!#$%&'*+/=^`{|}~-]*+")  # matched on the reversed text
_LOCAL_MAX = 256  # RFC 5321 allows 64
# '/', '=' and '&' are legal in a local part but also end a URL path or a query key,
# and a quote opens a repr: what stands before them stays (email=[email], '[email]').
_EMAIL_KEEP = re.compile(r"'*+(?:.*[/=&])?")
# Secrets recognisable by their prefix: Stripe, Slack, GitHub, AWS access key ids,
# GitLab, Google, OpenAI/Anthropic, npm, PyPI, SendGrid, Hugging Face, DigitalOcean.
# The prefix stays readable (it says what leaked); the rest is masked. Most prefixes
# end with '_', '-' or '.': the pattern starts there and looks behind for the rest
# (starting on the prefix's first letter would make every 'x' or 's' a candidate).
_TOKEN_PREFIXES = (
    *(f"{kind}_{mode}_" for kind in ("sk", "rk", "pk") for mode in ("live", "test")),
    "whsec_",
    *(f"gh{kind}_" for kind in "oprsu"),
    "github_pat_",
    "npm_",
    "hf_",
    "dop_v1_",
    *(f"xox{kind}-" for kind in "abeoprs"),
    "xapp-",
    *(f"gl{kind}-" for kind in ("pat", "dt", "rt", "ptt", "cbt", "imt", "oas", "ft", "soat")),
    "sk-",
    "pypi-",
    "SG.",
    "AKIA",
    "ASIA",
    "AIza",
)


def _token_pattern() -> str:
    by_end: dict[str, list[str]] = {}
    whole = []  # prefixes ending in a letter (AKIA): matched from their first letter
    for prefix in _TOKEN_PREFIXES:
        if prefix[-1].isalnum():
            whole.append(re.escape(prefix))
        else:
            by_end.setdefault(prefix[-1], []).append(prefix)
    branches = [
        f"{re.escape(end)}(?:{'|'.join(f'(?<={re.escape(p)})' for p in prefixes)})"
        for end, prefixes in sorted(by_end.items())
    ]
    return "(?:" + "|".join([*branches, *whole]) + r")[A-Za-z0-9_\-.]{16,}+"


_TOKEN = re.compile(_token_pattern())
_WHOLE_PREFIXES = tuple(p for p in _TOKEN_PREFIXES if p[-1].isalnum())
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# JSON Web Tokens (session and API tokens; their payload holds user data).
_JWT = re.compile(r"eyJ(?<![\w-]eyJ)[\w-]*+\.[\w-]++\.[\w-]*+")
# Telegram bot tokens, bare or in an API URL: <bot id>:<secret> (the id is public).
_BOT_TOKEN = re.compile(r":(?<=\d{5}:)[A-Za-z0-9_-]{30,}+")
# A URL's path, or the target of an HTTP request line (access logs, httpx): user
# input, where a phone number can be a whole segment (/clients/79686484488), which
# _PHONE leaves alone after a '/' (file paths): _SEGMENT_PHONE finds those.
_URL_PATH = re.compile(
    r"(?:://[^\s/]*+|GET |POST |PUT |PATCH |DELETE |HEAD |OPTIONS )(/[^\s\"'<>]*+)"
)
# URLs whose path is the secret (checked on what _URL_PATH found): Slack, Discord,
# Teams and Zapier webhooks, and any /hooks/ or /webhooks/ path. All after it is masked.
_WEBHOOK_HOST = re.compile(
    r"(?i)://(?:hooks\.slack\.com/(?:services|workflows|triggers)"
    r"|discord(?:app)?\.com/api/webhooks|[\w.-]*webhook\.office\.com/webhookb2"
    r"|outlook\.office(?:365)?\.com/webhook|hooks\.zapier\.com/hooks/catch)/"
)
_WEBHOOK_PATH = re.compile(r"/(?i:(?:web)?hooks?)/")
_URL_SECRET_END = re.compile(r"[?#]")
# Payment card numbers: 13 to 19 digits, optionally split by single spaces or dashes,
# masked only if they pass the Luhn check (_mask_card).
_CARD = re.compile(r"\d(?<![\w.+-]\d)(?:[ -]?\d){12,18}(?!-?\w)")
_CARD_SEPARATOR = re.compile(r"[ -]")
# A run of 10 to 15 digits, optionally split by spaces, dashes, dots or parentheses,
# maybe led by '+' or '(', and not inside a word, a number, a path or a host name.
_PHONE_REST = r"(?:[\s().-]{0,2}\d){9,14}(?!\w)"
_PHONE = re.compile(rf"[+(\d](?<![\w.:/-][+(\d])(?:(?<=\+)\(?\d|(?<=\()\d|(?<=\d)){_PHONE_REST}")
# The same, as a whole segment of a URL path (the '/' is kept).
_SEGMENT_PHONE = re.compile(rf"/\+?\(?\d{_PHONE_REST}")
# Digit runs that are not phone numbers: dates, and IPv4 addresses (octets checked).
_NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DIGIT = re.compile(r"\d")

# Text none of the patterns above can match, short of a prefixed token (each other
# pattern needs a digit, '@', ':' or '='): most keys and values of a log line.
_INERT = re.compile(r"[^\d@:=]*+")
_SHORTEST_TOKEN = 19  # "hf_" + 16
_SHORTEST_NUMBER = 10  # a phone number's digits; a card has more

# Every pattern scrub_text runs (the structure test walks this).
PATTERNS = (
    _URL_PASSWORD,
    _URL_PATH,
    _WEBHOOK_HOST,
    _WEBHOOK_PATH,
    _INLINE_SECRET,
    _TOKEN,
    _JWT,
    _BOT_TOKEN,
    _EMAIL_DOMAIN,
    _CARD,
    _PHONE,
    _SEGMENT_PHONE,
)

_MAX_DEPTH = 12
_TOO_DEEP = "[nested too deep]"


@functools.lru_cache(maxsize=4096)  # the same few keys, on every log line and event
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a value that must never be shown."""
    return _SECRET_KEY.search(key) is not None


def _keep_last_four(text: str, digits: int | None = None) -> str:
    """Every digit of ``text`` but the last four becomes '*'; separators stay."""
    if digits is None:
        digits = sum(map(str.isdigit, text))
    return _DIGIT.sub("*", text, count=digits - 4) if digits > 4 else text


def _mask_phone(match: re.Match[str]) -> str:
    return _masked_phone(match.group(0))


def _mask_segment_phone(match: re.Match[str]) -> str:
    return "/" + _masked_phone(match.group(0)[1:])


def _masked_phone(text: str) -> str:
    if _NOT_A_PHONE.search(text):
        return text
    if _IPV4.fullmatch(text) and all(int(part) <= 255 for part in text.split(".")):
        return text
    digits = sum(map(str.isdigit, text))
    if digits < 10 or digits > 15:
        return text
    return _keep_last_four(text, digits)


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, digits summed


def luhn_valid(digits: str) -> bool:
    """True when an ASCII digit string passes the Luhn check (card numbers do)."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    kept = sum(map(int, digits[-1::-2]))
    doubled = sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLED)))
    return (kept + doubled) % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    """A card number keeps its last four digits; a run that fails Luhn is left alone.

    The run may carry a neighbour in its first or last group (an order number, an
    expiry year): then the longest span of whole groups that passes Luhn is masked.
    """
    text = match.group(0)
    groups = _CARD_SEPARATOR.split(text)
    if luhn_valid("".join(groups)):
        return _keep_last_four(text)
    if not 1 < len(groups) <= 6:
        return text
    starts = [0]
    for group in groups:
        starts.append(starts[-1] + len(group) + 1)
    spans = sorted(
        ((i, j) for i in range(len(groups)) for j in range(i + 1, len(groups) + 1)),
        key=lambda span: span[0] - span[1],
    )
    for i, j in spans:
        if 13 <= sum(map(len, groups[i:j])) <= 19 and luhn_valid("".join(groups[i:j])):
            start, end = starts[i], starts[j] - 1
            return text[:start] + _keep_last_four(text[start:end]) + text[end:]
    return text


def _mask_emails(text: str) -> str:
    pieces: list[str] = []
    done = 0
    for match in _EMAIL_DOMAIN.finditer(text):
        at = match.start()
        window = text[max(done, at - _LOCAL_MAX) : at]
        local = _LOCAL_RUN.match(window[::-1])
        length = local.end() if local is not None else 0
        if not length or (length == 3 and text.endswith(":***", 0, at)):
            # "@decorator.name", "@ host.com"; "user:***@host" (_URL_PASSWORD's mask)
            continue
        start = at - length
        keep = _EMAIL_KEEP.match(text, start, at)
        kept = keep.end() if keep is not None else start
        pieces.append(text[done : kept if kept < at else start])
        pieces.append("[email]")
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _mask_token(match: re.Match[str]) -> str:
    text, found = match.string, match.group(0)
    whole = next((p for p in _WHOLE_PREFIXES if found.startswith(p)), None)
    if whole is not None:
        start, kept = match.start(), whole
    else:  # the match starts on the prefix's last character; the rest is behind it
        end = match.start() + 1
        start = end - len(next(p for p in _TOKEN_PREFIXES if text.startswith(p, end - len(p))))
        kept = found[0]
    if start > 0 and text[start - 1] in _ALNUM:
        return found  # inside a longer word ("task-...", "xAKIA...")
    return kept + "***"


def _mask_url(match: re.Match[str]) -> str:
    text = match.group(0)
    hook = _WEBHOOK_HOST.match(text)
    if hook is None:
        query = _URL_SECRET_END.search(text)
        hook = _WEBHOOK_PATH.search(text, 0, query.start() if query else len(text))
    if hook is not None:
        query = _URL_SECRET_END.search(text, hook.end())
        return text[: hook.end()] + "***" + (text[query.start() :] if query else "")
    return _SEGMENT_PHONE.sub(_mask_segment_phone, text)


def _mask_tokens(text: str) -> str:
    text = _TOKEN.sub(_mask_token, text)
    if "eyJ" in text:
        text = _JWT.sub("[jwt]", text)
    return text


def scrub_text(text: str) -> str:
    """Mask secrets, e-mail addresses, card and phone numbers inside free text."""
    if not text:
        return text
    if _INERT.fullmatch(text):
        # No digit, '@', ':' or '=': only a prefixed token (sk_live_..., ghp_...) can hide here.
        return text if len(text) < _SHORTEST_TOKEN else _mask_tokens(text)
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***\3", text)
        text = _URL_PATH.sub(_mask_url, text)
    elif " /" in text:  # an HTTP request line ("GET /clients/79686484488")
        text = _URL_PATH.sub(_mask_url, text)
    if "=" in text or ":" in text:
        if len(text) < _LONG or _has_secret_word(text):
            text = _INLINE_SECRET.sub(r"\1***", text)
        if ":" in text:
            text = _BOT_TOKEN.sub(":***", text)
    if len(text) >= _SHORTEST_TOKEN:
        text = _mask_tokens(text)
    if "@" in text:
        text = _mask_emails(text)
    if len(text) >= _SHORTEST_NUMBER and _DIGIT.search(text):
        text = _CARD.sub(_mask_card, text)
        text = _PHONE.sub(_mask_phone, text)
    return text


def _has_secret_word(text: str) -> bool:
    """Whether a long text holds a keyword _INLINE_SECRET looks for (a C-speed pre-check)."""
    lowered = text.lower()
    return any(word in lowered for word in _SECRET_WORDS)


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
