"""Hostile input to the WhatsApp auth-state store (hypothesis).

Arbitrary JSON-able values, with ``bytes`` anywhere inside, come back from
``save_creds`` / ``load_creds`` and ``set_keys`` / ``get_keys`` exactly;
hostile session ids, key types and key ids are a ``ValidationError`` and
nothing else.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalayer import Database
from datalayer.errors import ValidationError
from datalayer.whatsapp import KEY_TYPES, AuthStateStore

from .strategies import hostile_text, json_values

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def storable(value: Any) -> bool:
    """No NUL inside a string: jsonb cannot hold one, and the store refuses it (tested below)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(item) for item in value)
    return True


def same(left: Any, right: Any) -> bool:
    """Equal, and of the same JSON type all the way down (1 is not 1.0, b"" is not "")."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


@pytest.fixture(scope="module")
def store_db(cluster_url: str) -> Iterator[Database]:
    with Database(cluster_url) as db:
        yield db


@pytest.fixture
def store(store_db: Database) -> AuthStateStore:
    return AuthStateStore(store_db, f"rel-{uuid.uuid4().hex[:12]}")


@PROPERTY
@given(creds=st.dictionaries(st.text(max_size=12), json_values(), max_size=6).filter(storable))
def test_creds_round_trip_exactly(store: AuthStateStore, creds: dict[str, Any]) -> None:
    store.save_creds(creds)
    loaded = store.load_creds()
    assert loaded is not None
    assert same(loaded, creds), (loaded, creds)


@PROPERTY
@given(
    key_type=st.sampled_from(KEY_TYPES),
    entries=st.dictionaries(
        st.one_of(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=2**40)),
        json_values().filter(lambda v: v is not None),
        min_size=1,
        max_size=5,
    ).filter(storable),
)
def test_keys_round_trip_exactly(
    store: AuthStateStore, key_type: str, entries: dict[Any, Any]
) -> None:
    wanted = {str(key): value for key, value in entries.items()}
    if len(wanted) != len(entries):  # 1 and "1" are one key; the test wants distinct ids
        return
    try:
        store.set_keys({key_type: entries})
    except ValidationError:
        # Refused input (e.g. NUL in a key id) is a clean refusal: nothing written.
        assert any("\x00" in key for key in wanted)
        assert store.get_keys(key_type, [k for k in wanted if "\x00" not in k]) == {}
        return
    loaded = store.get_keys(key_type, list(wanted))
    assert same(loaded, wanted), (loaded, wanted)
    store.set_keys({key_type: dict.fromkeys(entries)})
    assert store.get_keys(key_type, list(wanted)) == {}


@PROPERTY
@given(value=st.binary(max_size=4096))
def test_bytes_round_trip_exactly(store: AuthStateStore, value: bytes) -> None:
    record = {"record": value, "nested": [value, {"b": value}]}
    store.set_keys({"session": {"k": record}})
    assert store.get_keys("session", ["k"]) == {"k": record}
    store.save_creds({"noiseKey": {"private": value, "public": value[::-1]}})
    assert store.load_creds() == {"noiseKey": {"private": value, "public": value[::-1]}}


def documented_session_id(session_id: Any) -> bool:
    """1 to 64 ASCII letters, digits, '_' or '-'."""
    return (
        isinstance(session_id, str)
        and 1 <= len(session_id) <= 64
        and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in session_id)
    )


@PROPERTY
@given(
    session_id=st.one_of(
        # valid ids too (hostile text rarely is one), and a length just past the limit
        st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=65),
        hostile_text(),
        st.integers(),
        st.none(),
        st.binary(max_size=8),
    )
)
def test_hostile_session_ids_are_validation_errors(store_db: Database, session_id: Any) -> None:
    try:
        store = AuthStateStore(store_db, session_id)
    except ValidationError:
        assert not documented_session_id(session_id), "a valid session id was refused"
        return
    # Accepted ids are the documented alphabet, and usable.
    assert isinstance(session_id, str)
    assert 1 <= len(session_id) <= 64
    assert documented_session_id(session_id)
    store.save_creds({"ok": True})
    assert store.load_creds() == {"ok": True}
    store.clear()


def documented_key_id(key_id: str) -> bool:
    """What set_keys promises to take: non-empty UTF-8 of at most 1024 bytes, no NUL."""
    try:
        size = len(key_id.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 0 < size <= 1024 and "\x00" not in key_id


@PROPERTY
@given(
    # Real key types too: a hostile id under a valid type is the case that reaches SQL.
    key_type=st.one_of(st.sampled_from(KEY_TYPES), hostile_text(), st.integers(), st.none()),
    key_id=hostile_text(),
)
def test_hostile_key_types_and_ids_never_fail_otherwise(
    store: AuthStateStore, key_type: Any, key_id: str
) -> None:
    try:
        store.set_keys({key_type: {key_id: {"v": 1}}})
        got = store.get_keys(key_type, [key_id])
    except ValidationError:
        assert not (key_type in KEY_TYPES and documented_key_id(key_id)), "valid input refused"
        return
    assert got == {key_id: {"v": 1}}


@pytest.mark.parametrize(
    "number", [1e16, -1e16, 1e308, 1.7976931348623157e308, 5e-324, 2.5e-308, 0.1]
)
def test_extreme_floats_round_trip(store: AuthStateStore, number: float) -> None:
    """jsonb prints numeric in full: 1e308 must not come back as the int 10**308."""
    store.save_creds({"f": number, "l": [number]})
    loaded = store.load_creds()
    assert loaded is not None
    assert same(loaded, {"f": number, "l": [number]})


def test_nul_in_string_values_is_a_clean_refusal(store: AuthStateStore) -> None:
    """jsonb cannot hold NUL in a string: a ValidationError, and nothing written."""
    with pytest.raises(ValidationError):
        store.save_creds({"name": "a\x00b"})
    with pytest.raises(ValidationError):
        store.set_keys({"session": {"k": ["ok", {"x": "\x00"}]}})
    assert store.load_creds() is None
    assert store.get_keys("session", ["k"]) == {}
