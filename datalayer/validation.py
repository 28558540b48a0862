"""Input checks the facade runs before any SQL, and how inputs appear in reports.

Each function takes what a caller may reasonably pass (a phone as typed by a
person, an id read from a query string) and returns the one canonical form the
database stores, or raises :class:`~datalayer.errors.ValidationError`.
Messages name the argument and what was wrong with it, never the value itself:
the value may be a phone number or a name, and the message ends up in logs.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sized
from datetime import date, datetime
from typing import Any

from datalayer._collector import collector_paused
from datalayer.errors import ValidationError

__all__ = [
    "MAX_LIMIT",
    "clamp_limit",
    "describe_value",
    "escape_like",
    "normalize_phone",
    "redact_arguments",
    "validate_date",
    "validate_flag",
    "validate_id",
    "validate_optional_date",
    "validate_optional_flag",
    "validate_optional_id",
    "validate_order_by",
    "validate_payload",
    "validate_payloads",
    "validate_text",
]

MAX_LIMIT = 1000
#: Largest value a PostgreSQL ``bigint`` holds; a bigger id could never match.
MAX_ID = 2**63 - 1
DEFAULT_COUNTRY_CODE = "7"

# What people put between the digits of a phone number (str.translate deletes them).
_PHONE_SEPARATORS = str.maketrans("", "", " \t\u00a0()-.")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def normalize_phone(value: object, *, name: str = "phone") -> str:
    """Return *value* as E.164 digits without the ``+``: ``"79686484488"``.

    Accepts what people type: spaces, dashes, dots, brackets, a leading ``+``
    or ``00``. Without an international prefix, the Russian trunk prefix ``8``
    becomes ``7`` and a bare 10-digit national number gets country code ``7``.
    Fewer than 10 or more than 15 digits, letters, or anything but a ``str``
    or ``int`` are a :class:`ValidationError`.
    """
    if type(value) is str:
        # Already E.164 (what a booking system or a second call sends): digits only,
        # "+" or no national prefix, so none of the rules below would change it.
        plus = value[:1] == "+"
        digits = value[1:] if plus else value
        if (
            digits.isdigit()
            and digits.isascii()
            and (10 if plus else 11) <= len(digits) <= 15
            and digits[0] != "0"
            and (plus or digits[0] != "8" or len(digits) != 11)
        ):
            return digits
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{name} must be a string or an integer")
    if isinstance(value, int) and not 0 < value < 10**15:
        # Also keeps str() away from ints past Python's digit limit (a ValueError).
        raise ValidationError(f"{name} must have 10 to 15 digits")
    text = str(value).strip()
    international = text.startswith("+")
    digits = (text[1:] if international else text).translate(_PHONE_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(
            f"{name} may hold only digits, spaces, '-', '.', '(', ')' and a leading '+'"
        )
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if not 10 <= len(digits) <= 15:
        raise ValidationError(f"{name} must have 10 to 15 digits")
    if not international:
        if len(digits) == 11 and digits.startswith("8"):
            digits = DEFAULT_COUNTRY_CODE + digits[1:]
        elif len(digits) == 10:
            digits = DEFAULT_COUNTRY_CODE + digits
    if digits.startswith("0"):
        raise ValidationError(f"{name} must not start with 0 after the country prefix")
    return digits


def validate_id(value: object, *, name: str = "id") -> int:
    """Return *value* as a positive integer id.

    Integers and strings of digits are accepted; ``bool`` (an ``int`` in
    Python, never an id), zero, negatives, floats and ids that do not fit a
    PostgreSQL ``bigint`` are refused.
    """
    if type(value) is int and 0 < value <= MAX_ID:
        return value  # the common case, first
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer, not a bool")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit():
            raise ValidationError(f"{name} must be a positive integer")
        value = int(text)
    if not isinstance(value, int):
        raise ValidationError(f"{name} must be a positive integer")
    if not 0 < value <= MAX_ID:
        raise ValidationError(f"{name} must be between 1 and {MAX_ID}")
    return value


def validate_optional_id(value: object, *, name: str = "id") -> int | None:
    """Like :func:`validate_id`, but ``None`` (meaning "any") passes through."""
    return None if value is None else validate_id(value, name=name)


def validate_date(value: object, *, name: str = "date") -> date:
    """Return *value* as a :class:`datetime.date`.

    A ``date`` or an ISO ``YYYY-MM-DD`` string. A ``datetime`` is refused:
    which calendar day it falls on depends on a time zone the caller has not
    named, so the caller should pick the day.
    """
    if isinstance(value, datetime):
        raise ValidationError(f"{name} must be a date, not a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        raise ValidationError(f"{name} must be an ISO date (YYYY-MM-DD)")
    raise ValidationError(f"{name} must be a date or an ISO date string")


def validate_optional_date(value: object, *, name: str = "date") -> date | None:
    """Like :func:`validate_date`, but ``None`` (no bound) passes through."""
    return None if value is None else validate_date(value, name=name)


def clamp_limit(value: object, *, name: str = "limit") -> int:
    """Return *value* clamped to ``1..MAX_LIMIT``; it must be an integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer")
    return max(1, min(MAX_LIMIT, value))


def validate_text(value: object, *, name: str = "name", max_length: int = 255) -> str:
    """Return *value* trimmed; it must be a non-empty string without NUL."""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    text = value.strip()
    if not text:
        raise ValidationError(f"{name} must not be empty")
    if len(text) > max_length:
        raise ValidationError(f"{name} must be at most {max_length} characters")
    if "\x00" in text:
        raise ValidationError(f"{name} must not contain NUL characters")
    return text


def validate_flag(value: object, *, name: str) -> bool:
    """Return *value* if it is a ``bool``; ``1``, ``"yes"`` and friends are refused."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False")
    return value


def validate_optional_flag(value: object, *, name: str) -> bool | None:
    """Like :func:`validate_flag`, but ``None`` (either) passes through."""
    return None if value is None else validate_flag(value, name=name)


def validate_order_by(value: object, allowed: Collection[str], *, name: str = "order_by") -> str:
    """Return *value* if it is one of the *allowed* column names."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"{name} must be one of: {', '.join(sorted(allowed))}")
    return value


def escape_like(text: str) -> str:
    """Escape ``%``, ``_`` and ``\\`` so ``text`` matches literally inside a LIKE pattern.

    The one definition of it: the repositories' name search uses it too.
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


Normalizer = Callable[[Any], Any]


def validate_payload(
    payload: object,
    model: type[Any],
    *,
    keys: Collection[str],
    normalizers: Mapping[str, Normalizer] | None = None,
    name: str = "payload",
) -> dict[str, Any]:
    """Check one upsert payload and return it as a ``{column: value}`` dict.

    *payload* is an instance of the dataclass *model* or a mapping of its
    field names. A mapping may leave out the fields that have a default, but
    fields without one and the conflict *keys* must be given (not None); a
    key that is not a field of *model* is refused (a misspelt column would
    otherwise be dropped without a word).
    *normalizers* map a field to the validator of its value; ``None`` values
    are left to the database. The result holds every field: those a mapping
    leaves out take the model's defaults, so an upsert always writes a full
    row, whichever way it was spelt. An optional name field (``name``,
    ``staff_name``) that is blank (empty or whitespace) becomes ``None``.
    """
    check = _payload_check(model, keys, normalizers)
    try:
        return check(payload)
    except _Refused as refused:
        raise ValidationError(f"{name} {refused}") from None


def validate_payloads(
    payloads: object,
    model: type[Any],
    *,
    keys: Collection[str],
    normalizers: Mapping[str, Normalizer] | None = None,
    name: str = "payloads",
) -> list[dict[str, Any]]:
    """Check a batch of upsert payloads (any iterable, any size) one by one.

    Each is checked as :func:`validate_payload` checks one; a failure names the
    item (``clients[41]``). A single payload where a batch is expected (a
    mapping, a *model* instance, a string) is refused rather than iterated over.
    """
    if isinstance(payloads, Mapping | str | bytes | model) or not isinstance(payloads, Iterable):
        raise ValidationError(f"{name} must be an iterable of {model.__name__} or mappings")
    check = _payload_check(model, keys, normalizers)
    batch = list(payloads)  # the caller's iterator runs outside the pause (it may do I/O)
    rows: list[dict[str, Any]] = []
    append = rows.append
    try:
        with collector_paused():
            for payload in batch:
                append(check(payload))
    except _Refused as refused:
        raise ValidationError(f"{name}[{len(rows)}] {refused}") from None
    return rows


@dataclasses.dataclass(frozen=True, slots=True)
class _Model:
    """What checking a payload of one dataclass needs, worked out once per model."""

    fields: tuple[str, ...]
    names: frozenset[str]
    required: frozenset[str]  # fields without a default
    defaults: dict[str, Any]  # field -> plain default, in field order
    factories: tuple[tuple[str, Callable[[], Any]], ...]
    values: Callable[[Any], tuple[Any, ...]]  # an instance's field values, in order
    # Defaults can be filled in without calling the model (no __post_init__, every
    # field an __init__ argument); else a mapping is completed through the model.
    plain: bool


_MODELS: dict[type[Any], _Model] = {}


def _model(model: type[Any]) -> _Model:
    known = _MODELS.get(model)
    if known is None:
        fields = [f for f in dataclasses.fields(model)]
        names = tuple(f.name for f in fields)
        getter = operator.attrgetter(*names)
        known = _MODELS[model] = _Model(
            fields=names,
            names=frozenset(names),
            required=frozenset(
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
            defaults={f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
            factories=tuple(
                (f.name, f.default_factory)
                for f in fields
                if f.default_factory is not dataclasses.MISSING
            ),
            values=getter if len(names) > 1 else lambda row: (getter(row),),
            plain=not hasattr(model, "__post_init__") and all(f.init for f in fields),
        )
    return known


class _Refused(Exception):
    """A payload's own fault, raised as a ``ValidationError`` under its name."""


def _payload_check(
    model: type[Any], keys: Collection[str], normalizers: Mapping[str, Normalizer] | None
) -> Callable[[object], dict[str, Any]]:
    """:func:`validate_payload` for one model, keys and normalizers, set up once.

    A batch of 100 000 payloads pays the setup once and then, per payload, a few
    dictionary operations in C: no model object, no comprehension, no sort (the
    list of missing fields is built only for the error message). Everything it
    reads is a local of this closure, not an attribute looked up per payload.
    """
    spec = _model(model)
    needed = tuple(sorted(spec.required.union(keys)))
    steps = tuple((normalizers or {}).items())
    # The booking system holds clients without names: a blank optional name (``name``,
    # ``*_name``) is no name, stored as NULL, and one such row must not fail a sync.
    blank_means_null = tuple(
        sorted(f for f in spec.names - spec.required if f == "name" or f.endswith("_name"))
    )
    names, defaults, factories, plain = spec.names, spec.defaults, spec.factories, spec.plain
    fields, values = spec.fields, spec.values

    def check(payload: Any) -> dict[str, Any]:
        source: Mapping[str, Any]
        kind = type(payload)
        if kind is not dict and (kind is model or isinstance(payload, model)):
            row = dict(zip(fields, values(payload)))  # noqa: B905 (same length)
            source = row
        elif kind is dict or isinstance(payload, Mapping):
            if not payload.keys() <= names:
                unknown = [k for k in payload if k not in names]
                raise _Refused(f"has unknown fields for {model.__name__}: {_field_names(unknown)}")
            source = payload
            if plain:
                row = defaults.copy()
                row.update(payload)
            else:
                row = dict(payload)
        else:
            raise _Refused(f"must be a {model.__name__} or a mapping")
        for field in blank_means_null:
            value = row.get(field)
            if isinstance(value, str) and not value.strip():
                row[field] = None
        for field in needed:
            if source.get(field) is None:
                missing = [k for k in needed if source.get(k) is None]
                raise _Refused(f"lacks required fields: {', '.join(missing)}")
        for field, normalize in steps:
            value = source.get(field)
            if value is not None:
                row[field] = normalize(value)
        if source is payload:
            # A mapping spells the same full row as the model: left-out fields take the
            # model's defaults (the column defaults), in a single upsert as in a batch.
            if plain:
                for field, factory in factories:
                    if field not in payload:
                        row[field] = factory()
            else:
                complete = model(**row)
                row = dict(zip(fields, values(complete)))  # noqa: B905 (same length)
        return row

    return check


def _field_names(keys: list[object]) -> str:
    """Unknown field names for a message. A key that is no identifier is counted, not
    echoed: a mapping keyed by phone numbers, passed by mistake, must not reach a log line.
    """
    names = sorted(k for k in keys if isinstance(k, str) and k.isidentifier() and len(k) <= 64)
    others = len(keys) - len(names)
    return ", ".join(names + ([f"{others} other key(s)"] if others else []))


# --- inputs in reports -----------------------------------------------------------------


def describe_value(value: object) -> str:
    """A description of *value* that carries no personal data (names, phones, messages).

    Integer ids (``company_id=1``) are kept: they are what the reader at 3 a.m.
    needs to find the row, and they identify no one outside the database.
    """
    if isinstance(value, str):
        return f"<str, {len(value)} chars>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        return f"<{type(value).__name__}{_ids(fields)}>"
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(map(str, value)))
        return f"<mapping{_ids(value.items())}, keys: {keys}>"
    if isinstance(value, Sized):
        return f"<{type(value).__name__}, {len(value)} items>"
    return f"<{type(value).__name__}>"


def _ids(items: Iterable[tuple[object, object]]) -> str:
    return "".join(
        f" {key}={value}"
        for key, value in items
        if isinstance(key, str)
        and key.endswith("_id")
        and isinstance(value, int)
        and not isinstance(value, bool)
    )


def redact_arguments(names: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``extra=`` of a boundary: the call's arguments with *names* described, not shown.

    Called by errorkit only when a failure is reported, never on success.
    """

    def redact(arguments: dict[str, Any]) -> dict[str, Any]:
        return arguments | {n: describe_value(arguments[n]) for n in names if n in arguments}

    return redact
