"""Hostile input to the scrubber and the phone normaliser (hypothesis).

- No original digit run of a phone number or a payment card (beyond the last
  four digits), no e-mail address (ordinary, RFC 5322 as hypothesis writes
  them, internationalised), no password, no prefixed secret token and no
  webhook secret survives in a Sentry event or a log line, whatever the
  nesting, and an argument whose ``repr`` raises costs a fallback text, not an
  error.
- ``normalize_phone`` raises nothing but ``ValidationError``, and what it
  returns is E.164 digits.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sentry_sdk
from hypothesis import example, given
from hypothesis import strategies as st

from datalayer.errors import ValidationError
from datalayer.models import Client
from datalayer.validation import normalize_phone
from errorkit import _storm, captured, get_logger, scrub
from errorkit.testing import capture_events, capture_logs

from .strategies import (
    SECRET_KEYS,
    Card,
    Dsn,
    Phone,
    ReprRaises,
    Token,
    cards,
    dsns,
    emails,
    hostile_text,
    nested,
    phones,
    property_settings,
    tokens,
    webhooks,
)

PROPERTY = property_settings(100)

_PHONE_SPAN = re.compile(r"\d[\d\s().\-*]*")
_FILLER = st.text(alphabet=string.ascii_letters + " ", max_size=12)


def strings(value: Any) -> Iterator[str]:
    """Every string inside an event or a log line (keys, values, reprs of objects)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings(item)
    elif value is not None and not isinstance(value, int | float | bool):
        yield repr(value)


def digits_survive(text: str, written: str, digits: str) -> bool:
    """True when the digits that must be masked (all but the last four) are readable."""
    hidden = digits[:-4]
    if written in text:
        return True
    return any(
        hidden in re.sub(r"\D", "", span)
        for span in _PHONE_SPAN.findall(text)
        if sum(ch.isdigit() for ch in span) >= len(hidden)
    )


def phone_survives(text: str, phone: Phone) -> bool:
    return digits_survive(text, phone.text, phone.digits)


def password_survives(text: str, password: str) -> bool:
    """True when the password, its first or its last eight characters are readable.

    Every generated password starts with "Pw" and ends with "Zq", so its ends do
    not occur by chance; a mask that stops early leaves one of them readable.
    """
    return password in text or password[:8] in text or password[-8:] in text


@dataclass(frozen=True)
class Secrets:
    """One example's secrets, each in the form a caller wrote it."""

    phone: Phone
    email: str
    dsn: Dsn
    card: Card
    token: Token
    webhook: Token

    def leaves(self) -> list[str]:
        return [
            self.phone.text,
            self.email,
            self.dsn.text,
            self.card.text,
            self.token.text,
            self.webhook.text,
            f"call {self.phone.text} or write to {self.email}",
            f"connect with {self.dsn.text} please",
            f"paid with {self.card.text}, key {self.token.text}",
            f"notify {self.webhook.text} now",
        ]


@st.composite
def secrets(draw: st.DrawFn) -> Secrets:
    return Secrets(
        phone=draw(phones()),
        email=draw(emails()),
        dsn=draw(dsns()),
        card=draw(cards()),
        token=draw(tokens()),
        webhook=draw(webhooks()),
    )


def assert_clean(found: list[str], secret: Secrets) -> None:
    for text in found:
        assert not phone_survives(text, secret.phone), f"phone survives in {text!r}"
        assert secret.email not in text, f"e-mail {secret.email!r} survives in {text!r}"
        domain = secret.email.rsplit("@", 1)[1]
        assert f"@{domain}" not in text, f"e-mail domain of {secret.email!r} survives in {text!r}"
        assert not password_survives(text, secret.dsn.password), f"password survives in {text!r}"
        assert not digits_survive(text, secret.card.text, secret.card.digits), (
            f"card {secret.card.text!r} survives in {text!r}"
        )
        assert secret.token.secret not in text, f"token {secret.token.text!r} survives in {text!r}"
        assert secret.webhook.secret not in text, (
            f"webhook {secret.webhook.text!r} survives in {text!r}"
        )


@st.composite
def payloads(draw: st.DrawFn, secret: Secrets) -> Any:
    """Nested containers holding the secrets at any depth, free or under secret keys."""
    leaves = st.one_of(
        st.sampled_from(secret.leaves()),
        st.builds(lambda key: {key: secret.dsn.password}, st.sampled_from(SECRET_KEYS)),
        st.builds(lambda key: {key.upper(): secret.dsn.text}, st.sampled_from(SECRET_KEYS)),
        st.integers(),
        _FILLER,
    )
    return draw(nested(leaves))


@contextmanager
def unlimited_storm_control() -> Iterator[None]:
    """No storm budget: every failure of the property run is sent and checked."""
    previous = _storm.install(_storm.StormControl(0, 0))
    try:
        yield
    finally:
        _storm.install(previous)


def test_no_personal_data_or_secret_survives_in_events_or_logs() -> None:
    # One capture for the whole run (a fresh Sentry client costs ~40 ms), with storm
    # control off so every example's event is really sent; each example clears it.
    with capture_events() as events, capture_logs() as logs, unlimited_storm_control():

        @PROPERTY
        @given(data=st.data(), secret=secrets(), filler=_FILLER)
        def check(data: st.DataObject, secret: Secrets, filler: str) -> None:
            payload = data.draw(payloads(secret), label="payload")

            @captured("reliability", "leaky")
            def leaky(phone: str, contact: str, conninfo: str, payload: Any, weird: Any) -> None:
                raise RuntimeError(
                    f"{filler} failed for {phone} / {contact} via {conninfo}: "
                    f"{secret.card.text} {secret.token.text} {secret.webhook.text}"
                )

            events.clear()
            logs.clear()
            with pytest.raises(RuntimeError):
                leaky(secret.phone.text, secret.email, secret.dsn.text, payload, ReprRaises())
            get_logger("reliability.probe").warning(
                "probe",
                note=f"{filler} {' '.join(secret.leaves())}",
                payload=payload,
                password=secret.dsn.password,
            )
            assert len(events) == 1
            assert any(line.get("event") == "operation_failed" for line in logs)
            assert_clean(list(strings(list(events))), secret)
            assert_clean(list(strings(list(logs))), secret)

        check()


@PROPERTY
@given(data=st.data(), secret=secrets())
def test_scrub_masks_nested_values_and_never_raises(data: st.DataObject, secret: Secrets) -> None:
    payload = data.draw(payloads(secret), label="payload")
    cleaned = scrub([payload, ReprRaises(), {"weird": ReprRaises()}])
    found = [s for s in strings(cleaned[0]) if s]
    assert_clean(found, secret)


@PROPERTY
@given(email=st.emails())
@example(email="анна.петрова@почта.рф")
@example(email="=@example.com")
@example(email="o'brien@mail.example.com")
def test_every_address_hypothesis_writes_is_masked(email: str) -> None:
    for text in (email, f"write to {email} today", f"<{email}>", f"email={email}", repr(email)):
        masked = scrub(text)
        assert email not in masked
        assert "@" + email.rsplit("@", 1)[1] not in masked
        assert "[email]" in masked


@PROPERTY
@given(card=cards(), before=_FILLER, after=st.sampled_from(["", " exp 12/27", ".", " 2027"]))
def test_card_numbers_keep_only_their_last_four_digits(card: Card, before: str, after: str) -> None:
    text = f"{before} {card.text}{after}"
    masked = scrub(text)
    assert not digits_survive(masked, card.text, card.digits)
    # Masking keeps the length: the card's place shows its last four digits, and no other.
    where = slice(len(before) + 1, len(before) + 1 + len(card.text))
    assert re.sub(r"\D", "", masked[where]) == card.digits[-4:]
    assert masked[where.stop :] == after


def test_deeply_nested_secrets_are_masked_in_log_lines() -> None:
    """Nesting deeper than the scrubber walks must not let a value through untouched."""
    phone = Phone(text="+7 968 648 44 88", digits="79686484488")
    deep: Any = {"password": "Pwdeepsecret123Zq", "phone": phone.text}
    for _ in range(30):
        deep = [deep]
    with capture_logs() as logs:
        get_logger("reliability.probe").warning("deep_probe", payload=deep)
    found = list(strings(list(logs)))
    assert not any(phone_survives(text, phone) for text in found)
    assert not any("Pwdeepsecret123Zq" in text for text in found)


def test_deeply_nested_secrets_are_masked_in_sentry_contexts() -> None:
    phone = Phone(text="+7 968 648 44 88", digits="79686484488")
    deep: Any = {"password": "Pwdeepsecret123Zq", "phone": phone.text}
    for _ in range(30):
        deep = {"k": deep}

    @captured("reliability", "deep_context")
    def fail() -> None:
        raise RuntimeError("boom")

    with capture_events() as events, sentry_sdk.new_scope() as scope:
        scope.set_context("deep", {"v": deep})
        with pytest.raises(RuntimeError):
            fail()
    found = list(strings(list(events)))
    assert not any(phone_survives(text, phone) for text in found)
    assert not any("Pwdeepsecret123Zq" in text for text in found)


def test_a_model_logged_as_a_value_is_masked() -> None:
    """A dataclass row logged as a value: its repr (which the JSON renderer would use)
    must not carry the phone."""
    phone = Phone(text="79686484488", digits="79686484488")
    client = Client(yclients_id=1, company_id=1, name="Anna", phone=phone.text)
    with capture_logs() as logs:
        get_logger("reliability.probe").info("client_synced", client=client)
    assert not any(phone_survives(text, phone) for text in strings(list(logs)))


def test_argument_whose_repr_raises_costs_a_fallback_text() -> None:
    @captured("reliability", "weird_argument")
    def weird(value: Any) -> None:
        raise RuntimeError("boom")

    with capture_events() as events, pytest.raises(RuntimeError):
        weird(ReprRaises())
    (event,) = events
    arguments = event["contexts"]["errorkit"]["arguments"]
    assert "value" in arguments
    assert isinstance(arguments["value"], str)
    # The fallback names what could not be shown, and nothing of the failed repr.
    assert "ReprRaises" in arguments["value"]
    assert "exploded" not in arguments["value"]


# --- the phone normaliser ------------------------------------------------------


def anything() -> st.SearchStrategy[Any]:
    return st.one_of(
        phones().map(lambda p: p.text),
        hostile_text(),
        st.text(alphabet="0123456789 +-().", max_size=30),
        st.text(alphabet=st.characters(categories=["Nd", "Zs", "Pd"]), max_size=20),
        st.integers(),
        st.integers(min_value=10**9, max_value=10**15),
        st.floats(),
        st.booleans(),
        st.none(),
        st.binary(max_size=20),
        st.lists(st.integers(), max_size=3),
        st.builds(ReprRaises),
    )


@property_settings(300)
@given(value=anything())
@example(value=10**5000)  # str() of it raises ValueError past Python's digit limit
@example(value="\u0669\u0666\u0668\u0666\u0664\u0668\u0664\u0664\u0668\u0668")  # Arabic-Indic
@example(value="\uff19\uff16\uff18\uff16\uff14\uff18\uff14\uff14\uff18\uff18")  # fullwidth
@example(value="+7 968 648 44 88\x00")
@example(value="8 (968) 648-44-88")
def test_normalize_phone_raises_only_validation_error(value: Any) -> None:
    try:
        result = normalize_phone(value)
    except ValidationError:
        return
    # Anything accepted is E.164 digits: ASCII 0-9 only, 10 to 15 of them.
    assert isinstance(result, str)
    assert re.fullmatch(r"[1-9][0-9]{9,14}", result), result


@property_settings(100)
@given(phone=phones())
def test_normalize_phone_agrees_on_every_format_of_a_number(phone: Phone) -> None:
    """Every written form of one number normalises to the same digits."""
    result = normalize_phone(phone.text.removeprefix("tel:"))
    assert result.isascii() and result.isdigit()
    # The significant digits are kept (a trunk prefix 8 or 00 may be rewritten).
    assert result.endswith(phone.digits[-9:])
