"""datalayer.validation: what the facade accepts, and the one form it stores."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datalayer.errors import ValidationError
from datalayer.validation import (
    MAX_ID,
    MAX_LIMIT,
    clamp_limit,
    escape_like,
    normalize_phone,
    validate_date,
    validate_flag,
    validate_id,
    validate_optional_date,
    validate_optional_flag,
    validate_optional_id,
    validate_order_by,
    validate_payload,
    validate_payloads,
    validate_text,
)

# --- phones ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "8 (968) 648-44-88",
        "+7 968 648 44 88",
        "89686484488",
        "9686484488",
        "79686484488",
        "+79686484488",
        "  +7 (968) 648.44.88 ",
        "007 968 648 44 88",
        79686484488,
        89686484488,
        9686484488,
    ],
)
def test_normalize_phone_gives_e164_digits(raw: object) -> None:
    assert normalize_phone(raw) == "79686484488"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 212 555 0100", "12125550100"),
        ("+44 20 7946 0958", "442079460958"),
        ("+4930123456", "4930123456"),  # 10 digits with '+': already international
        ("+123456789012345", "123456789012345"),  # 15 digits, the E.164 maximum
    ],
)
def test_normalize_phone_keeps_international_numbers(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "968648448",  # 9 digits
        "+1234567890123456",  # 16 digits
        "",
        "   ",
        "8 968 ABC 44 88",
        "8968648448x",
        "phone",
        "+7 968 648 44 88 ext. 5",
        "7+9686484488",
        "++79686484488",
        "+0 968 648 44 88",
        "8 968 648 44 88\x00",
        "8 968 648 44 8٨",  # an Arabic-Indic digit: stored phones are ASCII
        "\uff18\uff19\uff16\uff18\uff16\uff14\uff18\uff14\uff14\uff18\uff18",  # full-width digits
        True,
        None,
        7.9686484488e10,
        b"89686484488",
        ["89686484488"],
    ],
)
def test_normalize_phone_refuses(raw: object) -> None:
    with pytest.raises(ValidationError):
        normalize_phone(raw)


def test_normalize_phone_error_never_echoes_the_number() -> None:
    with pytest.raises(ValidationError) as info:
        normalize_phone("8 968 648 44 8X")
    assert "648" not in str(info.value)
    assert "phone" in str(info.value)


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        normalize_phone("nope")


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True))
def test_national_forms_agree(national: str) -> None:
    spaced = f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    forms = {national, "8" + national, "+7" + national, spaced, f"+7 {national}"}
    assert {normalize_phone(f) for f in forms} == {"7" + national}


@given(st.text(max_size=30))
def test_normalize_phone_returns_digits_or_refuses(text: str) -> None:
    try:
        result = normalize_phone(text)
    except ValidationError:
        return
    assert result.isascii() and result.isdigit()
    assert 10 <= len(result) <= 15


def _outcome(text: str) -> str:
    try:
        return normalize_phone(text)
    except ValidationError as exc:
        return f"refused: {exc}"


@given(st.from_regex(r"\+?[0-9٣²]{0,18}", fullmatch=True))
def test_phones_already_in_digits_take_the_short_way_to_the_same_answer(text: str) -> None:
    """A string of digits (and a leading "+") skips the separator handling; a trailing
    space sends the same number the long way. Both must agree, refusals included."""
    assert _outcome(text) == _outcome(text + " ")


# --- ids ------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("42", 42), (" 7 ", 7), (MAX_ID, MAX_ID)])
def test_validate_id_accepts(raw: object, expected: int) -> None:
    assert validate_id(raw) == expected


@pytest.mark.parametrize(
    "raw", [0, -1, True, False, 1.0, "1.5", "", "abc", "-3", "٣", None, MAX_ID + 1, [1]]
)
def test_validate_id_refuses(raw: object) -> None:
    with pytest.raises(ValidationError, match="client_id"):
        validate_id(raw, name="client_id")


def test_validate_optional_id() -> None:
    assert validate_optional_id(None) is None
    assert validate_optional_id("5") == 5
    with pytest.raises(ValidationError):
        validate_optional_id(0)


# --- dates ----------------------------------------------------------------


def test_validate_date_accepts_dates_and_iso_strings() -> None:
    assert validate_date(date(2026, 11, 29)) == date(2026, 11, 29)
    assert validate_date("2026-11-29") == date(2026, 11, 29)
    assert validate_date(" 2026-02-28 ") == date(2026, 2, 28)


@pytest.mark.parametrize(
    "raw",
    [
        "2026-02-30",
        "29.11.2026",
        "20261129",  # ISO basic format: date.fromisoformat takes it, we do not
        "2026-11-29T10:00",
        "2026-W48-7",
        "",
        20261129,
        None,
        datetime(2026, 11, 29, tzinfo=UTC),
        datetime(2026, 11, 29),
    ],
)
def test_validate_date_refuses(raw: object) -> None:
    with pytest.raises(ValidationError, match="date_from"):
        validate_date(raw, name="date_from")


def test_validate_optional_date() -> None:
    assert validate_optional_date(None) is None
    assert validate_optional_date("2026-01-01") == date(2026, 1, 1)


# --- limits, flags, order ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1), (100, 100), (MAX_LIMIT, MAX_LIMIT), (MAX_LIMIT + 1, MAX_LIMIT), (0, 1), (-5, 1)],
)
def test_clamp_limit(raw: int, expected: int) -> None:
    assert clamp_limit(raw) == expected


@pytest.mark.parametrize("raw", [True, "10", 1.5, None])
def test_clamp_limit_refuses_non_integers(raw: object) -> None:
    with pytest.raises(ValidationError, match="limit"):
        clamp_limit(raw)


def test_validate_flag() -> None:
    assert validate_flag(True, name="is_working") is True
    assert validate_optional_flag(None, name="is_working") is None
    for raw in (1, "true", None):
        with pytest.raises(ValidationError, match="is_working"):
            validate_flag(raw, name="is_working")


def test_validate_order_by() -> None:
    assert validate_order_by("datetime", {"datetime", "cost"}) == "datetime"
    for raw in ("DateTime", "datetime; drop table bookings", None, 1):
        with pytest.raises(ValidationError, match="order_by"):
            validate_order_by(raw, {"datetime", "cost"})


# --- text -----------------------------------------------------------------


def test_validate_text_trims() -> None:
    assert validate_text("  Анна  ") == "Анна"


@pytest.mark.parametrize("raw", ["", "   \t\n", None, 5, "a\x00b", "x" * 256])
def test_validate_text_refuses(raw: object) -> None:
    with pytest.raises(ValidationError, match="name"):
        validate_text(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("50%", "50\\%"),
        ("a_b", "a\\_b"),
        ("back\\slash", "back\\\\slash"),
        ("\\%", "\\\\\\%"),
        ("plain", "plain"),
    ],
)
def test_escape_like(raw: str, expected: str) -> None:
    assert escape_like(raw) == expected


# --- payloads -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    yclients_id: int
    company_id: int
    name: str | None = None
    phone: str | None = None


@dataclasses.dataclass(frozen=True)
class Titled:
    company_id: int
    title: str
    tags: list[str] = dataclasses.field(default_factory=list)


KEYS = ("yclients_id", "company_id")
NORMALIZERS = {"phone": normalize_phone, "yclients_id": validate_id}


def test_payload_from_dataclass() -> None:
    row = validate_payload(
        Row(1, 2, "Анна", "8 968 648 44 88"), Row, keys=KEYS, normalizers=NORMALIZERS
    )
    assert row == {"yclients_id": 1, "company_id": 2, "name": "Анна", "phone": "79686484488"}


def test_payload_from_mapping_may_be_partial() -> None:
    row = validate_payload(
        {"yclients_id": "3", "company_id": 2}, Row, keys=KEYS, normalizers=NORMALIZERS
    )
    assert row == {"yclients_id": 3, "company_id": 2, "name": None, "phone": None}


def test_payload_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="clientPhone"):
        validate_payload({"yclients_id": 1, "company_id": 2, "clientPhone": "x"}, Row, keys=KEYS)


def test_payload_unknown_key_that_is_no_field_name_is_counted_not_echoed() -> None:
    payload = {"yclients_id": 1, "company_id": 2, "+7 968 648-44-88": "Ivan", 79686484488: 1}
    with pytest.raises(ValidationError, match="2 other key") as raised:
        validate_payload(payload, Row, keys=KEYS)
    assert "968" not in str(raised.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"company_id": 2},
        {"yclients_id": None, "company_id": 2},
        Row(1, None),  # type: ignore[arg-type]
        [("yclients_id", 1)],
        "row",
        None,
    ],
)
def test_payload_refused(payload: Any) -> None:
    with pytest.raises(ValidationError):
        validate_payload(payload, Row, keys=KEYS)


def test_payload_fields_without_default_are_required() -> None:
    assert validate_payload({"company_id": 1, "title": "x"}, Titled, keys=("company_id",)) == {
        "company_id": 1,
        "title": "x",
        "tags": [],
    }
    with pytest.raises(ValidationError, match="title"):
        validate_payload({"company_id": 1, "tags": []}, Titled, keys=("company_id",))


def test_payload_normalizer_errors_surface() -> None:
    with pytest.raises(ValidationError, match="phone"):
        validate_payload(
            {"yclients_id": 1, "company_id": 2, "phone": "call me"},
            Row,
            keys=KEYS,
            normalizers=NORMALIZERS,
        )


def test_payload_defaults_are_fresh_for_every_row() -> None:
    rows = validate_payloads(
        [{"company_id": 1, "title": "a"}, {"company_id": 2, "title": "b"}],
        Titled,
        keys=("company_id",),
    )
    assert rows[0]["tags"] == [] and rows[0]["tags"] is not rows[1]["tags"]


def test_payload_normalizers_run_on_given_values_only() -> None:
    @dataclasses.dataclass(frozen=True)
    class Padded:
        company_id: int
        code: str = " default "

    strip = {"code": lambda value: value.strip()}
    given_row = validate_payload(
        {"company_id": 1, "code": " x "}, Padded, keys=("company_id",), normalizers=strip
    )
    left_out = validate_payload({"company_id": 1}, Padded, keys=("company_id",), normalizers=strip)
    assert (given_row["code"], left_out["code"]) == ("x", " default ")


def test_payload_of_a_model_with_post_init_goes_through_the_model() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        company_id: int
        size: int = 1

        def __post_init__(self) -> None:
            if self.size < 0:
                raise ValidationError("size must not be negative")

    assert validate_payload({"company_id": 1}, Checked, keys=("company_id",)) == {
        "company_id": 1,
        "size": 1,
    }
    with pytest.raises(ValidationError, match="negative"):
        validate_payloads([{"company_id": 1, "size": -1}], Checked, keys=("company_id",))


def test_payload_any_mapping_type() -> None:
    row = validate_payload(MappingProxyType({"yclients_id": 1, "company_id": 2}), Row, keys=KEYS)
    assert row == {"yclients_id": 1, "company_id": 2, "name": None, "phone": None}
    with pytest.raises(ValidationError, match=r"payloads\[0\] has unknown fields"):
        validate_payloads([MappingProxyType({"yclients_id": 1, "bad": 2})], Row, keys=KEYS)


def test_payloads_accept_any_iterable() -> None:
    rows = validate_payloads(
        ({"yclients_id": i, "company_id": 1} for i in range(1, 2501)), Row, keys=KEYS
    )
    assert len(rows) == 2500
    assert validate_payloads([], Row, keys=KEYS) == []


def test_payloads_name_the_bad_item() -> None:
    with pytest.raises(ValidationError, match=r"clients\[1\]"):
        validate_payloads(
            [{"yclients_id": 1, "company_id": 1}, {"yclients_id": 2, "bogus": 1}],
            Row,
            keys=KEYS,
            name="clients",
        )


@pytest.mark.parametrize("payloads", [{"yclients_id": 1, "company_id": 1}, Row(1, 1), "rows", 5])
def test_payloads_refuse_a_single_item(payloads: Any) -> None:
    with pytest.raises(ValidationError):
        validate_payloads(payloads, Row, keys=KEYS)
