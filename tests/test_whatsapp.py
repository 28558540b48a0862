"""AuthStateStore, check_session_health and cleanup_expired_keys against the real server.

A parity module (tests/conftest.py): every test also runs against
AsyncAuthStateStore, check_session_health_async and cleanup_expired_keys_async.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from datalayer import Database
from datalayer.errors import DataLayerError, ValidationError
from datalayer.whatsapp import (
    DEFAULT_KEY_TTLS,
    KEY_TYPES,
    AuthStateStore,
    check_session_health,
    cleanup_expired_keys,
    decode_value,
    dumps_value,
    encode_value,
)
from errorkit.testing import capture_events, capture_logs

WHATSAPP_TABLES = "whatsapp_keys, whatsapp_auth, whatsapp_cleanup_runs"


def _truncate(db: Database) -> None:
    with db.connection() as conn:
        conn.execute(f"TRUNCATE {WHATSAPP_TABLES} RESTART IDENTITY")


@pytest.fixture
def wa_db(db: Database, flavour: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    """The suite's database (of the test's flavour) with empty WhatsApp tables (emptied
    again afterwards)."""
    target = request.getfixturevalue("async_db") if flavour == "async" else db
    _truncate(target)
    yield target
    _truncate(target)


def seed_keys(
    db: Database,
    count: int,
    *,
    expired: bool,
    session_prefix: str = "seed",
    per_session: int = 50,
    key_type: str = "pre-key",
) -> None:
    """``count`` keys spread over sessions of ``per_session`` keys, in one statement."""
    with db.connection() as conn:
        conn.execute(
            """
            INSERT INTO whatsapp_keys (session_id, key_type, key_id, value, expires_at)
            SELECT %(prefix)s || '-' || ((n - 1) / %(per)s), %(type)s, n::text,
                   jsonb_build_object('n', n),
                   CASE WHEN %(expired)s THEN now() - interval '1 hour'
                        ELSE now() + interval '1 day' END
            FROM generate_series(1, %(count)s) AS n
            """,
            {
                "prefix": session_prefix,
                "per": per_session,
                "type": key_type,
                "expired": expired,
                "count": count,
            },
        )


def count_keys(db: Database, where: str = "true") -> int:
    with db.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM whatsapp_keys WHERE {where}").fetchone()
    assert row is not None
    return int(row[0])


# --- the codec -------------------------------------------------------------------------


def test_codec_writes_bytes_as_base64_buffer_json() -> None:
    assert encode_value(b"\x00\xff") == {"type": "Buffer", "data": "AP8="}
    assert encode_value({"a": [bytearray(b"x"), memoryview(b"y")]}) == {
        "a": [{"type": "Buffer", "data": "eA=="}, {"type": "Buffer", "data": "eQ=="}]
    }


def test_codec_reads_base64_and_list_of_ints_forms() -> None:
    assert decode_value({"type": "Buffer", "data": "AP8="}) == b"\x00\xff"
    assert decode_value({"type": "Buffer", "data": [0, 255, 7]}) == b"\x00\xff\x07"
    assert decode_value({"k": [{"type": "Buffer", "data": []}]}) == {"k": [b""]}


def test_codec_leaves_lookalikes_alone() -> None:
    lookalikes: list[Any] = [
        {"type": "Buffer", "data": "not base64!"},
        {"type": "Buffer", "data": [256]},
        {"type": "Buffer", "data": [True]},
        {"type": "Buffer", "data": "AA==", "extra": 1},
        {"type": "Other", "data": "AA=="},
    ]
    for value in lookalikes:
        assert decode_value(value) == value


# --- the store -------------------------------------------------------------------------


def _sample_creds() -> dict[str, Any]:
    return {
        "noiseKey": {"private": bytes(range(32)), "public": bytes(range(32, 64))},
        "signedIdentityKey": {"private": b"\x00" * 32, "public": b"\xff" * 32},
        "signedPreKey": {
            "keyPair": {"private": b"\x01\x02", "public": b"\x03"},
            "signature": bytes(range(256)),
            "keyId": 1,
        },
        "registrationId": 12345,
        "advSecretKey": "c2VjcmV0",
        "me": {"id": "79686484488:1@s.whatsapp.net", "name": "Салон"},
        "accountSyncCounter": 0,
        "processedHistoryMessages": [],
        "registered": True,
        "lastAccountSyncTimestamp": None,
    }


def test_creds_round_trip(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "salon-1")
    assert store.load_creds() is None
    creds = _sample_creds()
    store.save_creds(creds)
    assert store.load_creds() == creds
    creds["registrationId"] = 54321
    store.save_creds(creds)
    assert store.load_creds() == creds
    with wa_db.connection() as conn:
        row = conn.execute(
            "SELECT creds -> 'noiseKey' -> 'private' FROM whatsapp_auth WHERE session_id = %s",
            ("salon-1",),
        ).fetchone()
    assert row is not None
    assert row[0] == {"type": "Buffer", "data": base64.b64encode(bytes(range(32))).decode()}


def test_keys_of_every_baileys_type(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "salon-1")
    data = {
        key_type: {"1": {"type_name": key_type, "blob": key_type.encode() + b"\x00\x01"}}
        for key_type in KEY_TYPES
    }
    data["app-state-sync-version"] = {"critical_block": {"version": 3, "hash": b"\x00" * 128}}
    data["pre-key"] = {str(i): {"private": bytes([i]), "public": bytes([i, i])} for i in range(30)}
    store.set_keys(data)
    for key_type, entries in data.items():
        assert store.get_keys(key_type, list(entries)) == entries
    with wa_db.connection() as conn:
        rows = conn.execute(
            """
            SELECT key_type, round(extract(epoch FROM expires_at - updated_at) / 86400)
            FROM whatsapp_keys WHERE session_id = 'salon-1' GROUP BY 1, 2
            """
        ).fetchall()
    ttl_days = {key_type: days for key_type, days in rows}
    for key_type in KEY_TYPES:
        ttl = DEFAULT_KEY_TTLS[key_type]
        assert ttl_days[key_type] == (None if ttl is None else ttl.days), key_type
    assert ttl_days["pre-key"] == 7
    assert ttl_days["app-state-sync-version"] == 14
    assert ttl_days["app-state-sync-key"] is None
    assert ttl_days["identity-key"] is None


def test_binary_values_survive_intact(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "salon-1")
    every_byte = bytes(range(256))
    value = {
        "record": every_byte,
        "empty": b"",
        "nested": [{"chain": bytearray(every_byte[::-1])}, [b"\x00", "text", 1, 2.5, None]],
        "text": "ключ \u2603 \U0001f600",
    }
    store.set_keys({"session": {"79686484488.0": value}})
    got = store.get_keys("session", ["79686484488.0"])["79686484488.0"]
    assert got["record"] == every_byte
    assert isinstance(got["record"], bytes)
    assert got["empty"] == b""
    assert got["nested"] == [{"chain": every_byte[::-1]}, [b"\x00", "text", 1, 2.5, None]]
    assert got["text"] == value["text"]


def test_buffer_json_written_by_node_is_read_as_bytes(wa_db: Database) -> None:
    with wa_db.connection() as conn:
        conn.execute(
            """
            INSERT INTO whatsapp_keys (session_id, key_type, key_id, value, expires_at)
            VALUES ('node', 'sender-key', 'b64', %s::jsonb, now() + interval '1 day'),
                   ('node', 'sender-key', 'ints', %s::jsonb, now() + interval '1 day')
            """,
            (
                json.dumps({"k": {"type": "Buffer", "data": "AAEC"}}),
                json.dumps({"k": {"type": "Buffer", "data": [0, 1, 2]}}),
            ),
        )
    keys = AuthStateStore(wa_db, "node").get_keys("sender-key", ["b64", "ints", "missing"])
    assert keys == {"b64": {"k": b"\x00\x01\x02"}, "ints": {"k": b"\x00\x01\x02"}}


def test_none_deletes_and_ids_may_be_ints(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "salon-1")
    store.set_keys({"pre-key": {1: {"k": b"1"}, 2: {"k": b"2"}, 3: {"k": b"3"}}})
    store.set_keys({"pre-key": {2: None, "3": None, 99: None}, "session": {"a": None}})
    assert store.get_keys("pre-key", [1, 2, 3]) == {"1": {"k": b"1"}}
    assert count_keys(wa_db) == 1


def test_expired_keys_are_never_returned(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "salon-1")
    store.set_keys({"session": {"old": {"v": 1}, "new": {"v": 2}}})
    with wa_db.connection() as conn:
        conn.execute(
            "UPDATE whatsapp_keys SET expires_at = now() - interval '1 second' WHERE key_id = 'old'"
        )
    assert store.get_keys("session", ["old", "new"]) == {"new": {"v": 2}}
    # Writing it again revives it with a fresh TTL.
    store.set_keys({"session": {"old": {"v": 3}}})
    assert store.get_keys("session", ["old"]) == {"old": {"v": 3}}


def test_ttls_are_configurable(wa_db: Database) -> None:
    store = AuthStateStore(
        wa_db,
        "salon-1",
        ttls={"pre-key": timedelta(seconds=-1), "session": None},
        default_ttl=timedelta(hours=1),
    )
    store.set_keys({"pre-key": {"1": 1}, "session": {"1": 1}, "future-type": {"1": 1}})
    assert store.get_keys("pre-key", ["1"]) == {}
    assert store.get_keys("session", ["1"]) == {"1": 1}
    assert store.ttl_for("future-type") == timedelta(hours=1)
    assert count_keys(wa_db, "key_type = 'session' AND expires_at IS NULL") == 1
    assert count_keys(wa_db, "key_type = 'future-type' AND expires_at < now() + interval '2h'") == 1


@pytest.fixture
def explode_on_insert(wa_db: Database) -> Iterator[Database]:
    """A trigger that makes PostgreSQL refuse any key whose id is 'explode'."""
    with wa_db.connection() as conn:
        conn.execute(
            """
            CREATE FUNCTION test_whatsapp_explode() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.key_id = 'explode' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_whatsapp_explode BEFORE INSERT ON whatsapp_keys
                FOR EACH ROW EXECUTE FUNCTION test_whatsapp_explode();
            """
        )
    try:
        yield wa_db
    finally:
        with wa_db.connection() as conn:
            conn.execute("DROP TRIGGER test_whatsapp_explode ON whatsapp_keys")
            conn.execute("DROP FUNCTION test_whatsapp_explode()")


def test_failed_multi_type_set_keys_leaves_nothing(explode_on_insert: Database) -> None:
    wa_db = explode_on_insert
    store = AuthStateStore(wa_db, "salon-1")
    store.set_keys({"session": {"keep": {"v": 1}}, "pre-key": {"keep": {"v": 1}}})
    with capture_events() as events, pytest.raises(DataLayerError):
        store.set_keys(
            {
                "session": {"keep": None},  # the delete runs first and succeeds...
                "pre-key": {"keep": {"v": 2}, "new": {"v": 2}},
                "sender-key": {"explode": {"v": 2}},  # ...then the server refuses this one.
            }
        )
    assert store.get_keys("session", ["keep"]) == {"keep": {"v": 1}}
    assert store.get_keys("pre-key", ["keep", "new"]) == {"keep": {"v": 1}}
    assert count_keys(wa_db) == 2
    assert len(events) == 1  # the transaction reports it; the store's boundary adds nothing


def test_large_floats_and_unstorable_strings() -> None:
    # jsonb prints numeric in full: without care 1e16 would come back as an int.
    for number in (1e16, -1e20, 1.7976931348623157e308, 123456789012345678.0):
        text = dumps_value({"f": number})
        assert json.loads(text) == {"f": number}
        assert isinstance(json.loads(text)["f"], float)
    store = AuthStateStore(_NoDatabase(), "ok")  # type: ignore[arg-type]
    for value in ({"name": "a\x00b"}, {"a\x00": 1}, {"s": "\ud800"}, {"f": math.nan}):
        with pytest.raises(ValidationError):
            store.save_creds(value)
        with pytest.raises(ValidationError):
            store.set_keys({"session": {"1": value}})
    for key_id in ("x" * 1025, "nul\x00", "\udc80"):
        with pytest.raises(ValidationError):
            store.get_keys("session", [key_id])


def test_large_floats_round_trip(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "floats")
    value = {"big": 1e308, "neg": -1e16, "small": 5e-324, "plain": 0.1, "int": 10**18}
    store.save_creds(value)
    store.set_keys({"session": {"f": value}})
    for loaded in (store.load_creds(), store.get_keys("session", ["f"])["f"]):
        assert loaded == value
        assert {k: type(v) for k, v in loaded.items()} == {k: type(v) for k, v in value.items()}


def test_sessions_never_see_each_others_keys(wa_db: Database) -> None:
    one, two = AuthStateStore(wa_db, "one"), AuthStateStore(wa_db, "two")
    one.save_creds({"me": "one"})
    one.set_keys({"session": {"same-id": {"owner": "one"}}})
    two.set_keys({"session": {"same-id": {"owner": "two"}}})
    assert one.get_keys("session", ["same-id"]) == {"same-id": {"owner": "one"}}
    assert two.get_keys("session", ["same-id"]) == {"same-id": {"owner": "two"}}
    assert two.load_creds() is None
    two.set_keys({"session": {"same-id": None}})
    assert one.get_keys("session", ["same-id"]) == {"same-id": {"owner": "one"}}
    one.clear()
    assert one.load_creds() is None
    assert one.get_keys("session", ["same-id"]) == {}
    assert count_keys(wa_db) == 0


class _NoDatabase:
    """Stands where a Database goes and fails the test if any SQL is attempted."""

    def connection(self) -> Any:
        raise AssertionError("SQL attempted")

    transaction = connection


@pytest.mark.parametrize(
    "session_id",
    ["", "a" * 65, "with space", "slash/", "semi;colon", "ünïcode", "line\n", None, 42, b"raw"],
)
def test_invalid_session_id_is_refused_before_sql(session_id: Any) -> None:
    with capture_events() as events, pytest.raises(ValidationError):
        AuthStateStore(_NoDatabase(), session_id)  # type: ignore[arg-type]
    if session_id is not None:  # None means every session
        with pytest.raises(ValidationError):
            check_session_health(_NoDatabase(), session_id=session_id)  # type: ignore[arg-type]
    assert events == []


def test_valid_session_ids() -> None:
    for session_id in ("a", "A-z_0-9", "x" * 64):
        assert AuthStateStore(_NoDatabase(), session_id).session_id == session_id  # type: ignore[arg-type]


def test_bad_keys_input_is_refused_before_sql() -> None:
    store = AuthStateStore(_NoDatabase(), "ok")  # type: ignore[arg-type]
    with capture_events() as events:
        for call in (
            lambda: store.get_keys("", ["1"]),
            lambda: store.get_keys("pre-key", [True]),  # type: ignore[list-item]
            lambda: store.set_keys({"pre-key": ["not", "a", "mapping"]}),  # type: ignore[dict-item]
            lambda: store.set_keys({"pre-key": {"1": object()}}),
            lambda: store.save_creds(["not", "a", "mapping"]),  # type: ignore[arg-type]
        ):
            with pytest.raises(ValidationError):
                call()
    assert events == []
    assert store.get_keys("pre-key", []) == {}
    store.set_keys({})


def test_a_failed_read_raises_and_is_reported_once(unreachable_db: Database) -> None:
    store = AuthStateStore(unreachable_db, "salon-1")
    with capture_events() as events, pytest.raises(DataLayerError):
        store.get_keys("pre-key", ["1"])
    assert len(events) == 1
    assert events[0]["tags"]["component"] == "whatsapp"
    assert events[0]["tags"]["operation"] == "get_keys"
    with capture_events() as events, pytest.raises(DataLayerError):
        store.load_creds()
    assert len(events) == 1


def test_reports_describe_key_ids_and_values_never_show_them(unreachable_db: Database) -> None:
    # Baileys key ids are JIDs, a phone number before the '@'; values are key material.
    store = AuthStateStore(unreachable_db, "salon-1")
    jid = "79686484488:1@s.whatsapp.net"
    with capture_events() as events, pytest.raises(DataLayerError):
        store.get_keys("session", [jid])
    with capture_events() as more, pytest.raises(DataLayerError):
        store.set_keys({"session": {jid: {"private": b"KEY-MATERIAL"}}})
    events += more
    assert events
    text = json.dumps(events, default=str)
    assert "968648" not in text
    assert "KEY-MATERIAL" not in text
    assert "<list, 1 items>" in events[0]["contexts"]["errorkit"]["arguments"]["ids"]


def test_bad_key_ids_and_types_are_not_echoed_in_the_error() -> None:
    store = AuthStateStore(_NoDatabase(), "ok")  # type: ignore[arg-type]
    jid = "79686484488@s.whatsapp.net"
    for call in (
        lambda: store.get_keys("pre-key", [[jid]]),  # type: ignore[list-item]
        lambda: store.get_keys(jid, ["1"]),
        lambda: store.set_keys({jid: {"1": 1}}),
    ):
        with pytest.raises(ValidationError) as raised:
            call()
        assert "968648" not in str(raised.value)


# --- health ----------------------------------------------------------------------------


def test_health_of_an_empty_database(wa_db: Database) -> None:
    report = check_session_health(wa_db)
    assert report["status"] == "healthy"
    assert report["auth_records"] == 0
    assert report["total_keys"] == report["expired_keys"] == 0
    assert report["keys_by_type"] == {}
    assert report["sessions_over_threshold"] == []
    assert report["last_cleanup"] is None
    assert report["threshold"] == 300
    assert set(report) >= {
        "status",
        "message",
        "auth_records",
        "total_keys",
        "expired_keys",
        "keys_by_type",
        "threshold",
        "sessions_over_threshold",
        "last_cleanup",
        "checked_at",
    }
    json.dumps(report)


@pytest.mark.parametrize(
    ("expired", "status"),
    [(0, "healthy"), (99, "healthy"), (100, "warning"), (499, "warning"), (500, "critical")],
)
def test_health_bands(wa_db: Database, expired: int, status: str) -> None:
    seed_keys(wa_db, expired, expired=True)
    seed_keys(wa_db, 120, expired=False, session_prefix="live")
    report = check_session_health(wa_db)
    assert report["status"] == status
    assert report["expired_keys"] == expired
    assert report["total_keys"] == expired + 120
    assert report["keys_by_type"] == {"pre-key": expired + 120}


def test_health_thresholds_are_configurable(wa_db: Database) -> None:
    seed_keys(wa_db, 20, expired=True)
    assert check_session_health(wa_db, warning_expired=10, critical_expired=20)["status"] == (
        "critical"
    )
    assert check_session_health(wa_db, warning_expired=10)["status"] == "warning"
    with pytest.raises(ValidationError):
        check_session_health(wa_db, warning_expired=10, critical_expired=5)
    with pytest.raises(ValidationError):
        check_session_health(wa_db, threshold=0)


def test_sessions_over_threshold(wa_db: Database) -> None:
    seed_keys(wa_db, 301, expired=False, session_prefix="big", per_session=1000)
    seed_keys(wa_db, 10, expired=False, session_prefix="small", per_session=1000)
    report = check_session_health(wa_db)
    assert report["status"] == "warning"
    assert report["sessions_over_threshold"] == [{"session_id": "big-0", "keys": 301}]
    assert check_session_health(wa_db, threshold=400)["status"] == "healthy"


def test_health_of_one_session(wa_db: Database) -> None:
    store = AuthStateStore(wa_db, "mine")
    store.save_creds({"me": "mine"})
    store.set_keys({"pre-key": {"1": 1}, "session": {"1": 1, "2": 2}})
    seed_keys(wa_db, 600, expired=True, session_prefix="other", per_session=1000)
    report = store.check_session_health()
    assert report["status"] == "healthy"
    assert report["session_id"] == "mine"
    assert report["auth_records"] == 1
    assert report["keys_by_type"] == {"pre-key": 1, "session": 2}
    assert check_session_health(wa_db)["status"] == "critical"


def test_last_cleanup_after_a_cleanup(wa_db: Database) -> None:
    seed_keys(wa_db, 7, expired=True)
    result = cleanup_expired_keys(wa_db)
    report = check_session_health(wa_db)
    last = report["last_cleanup"]
    assert last is not None
    assert last["deleted"] == 7
    assert last["error"] is None
    assert last["duration_ms"] == pytest.approx(result["duration_ms"], abs=1.0)
    assert report["expired_keys"] == 0


def test_health_reports_error_when_the_database_is_unreachable(unreachable_db: Database) -> None:
    with capture_events() as events:
        report = check_session_health(unreachable_db)
    assert report["status"] == "error"
    assert "TransientError" in report["message"]
    assert report["total_keys"] == 0
    assert len(events) == 1
    assert events[0]["tags"]["component"] == "whatsapp"
    assert events[0]["tags"]["operation"] == "check_session_health"


# --- cleanup ---------------------------------------------------------------------------


def test_dry_run_deletes_nothing_and_reports_the_count(wa_db: Database) -> None:
    seed_keys(wa_db, 250, expired=True)
    seed_keys(wa_db, 40, expired=False, session_prefix="live")
    result = cleanup_expired_keys(wa_db, dry_run=True)
    assert result["dry_run"] is True
    assert result["deleted"] == 250
    assert result["batches"] == 0
    assert count_keys(wa_db) == 290
    assert check_session_health(wa_db)["last_cleanup"] is None


def test_cleanup_of_10000_expired_keys_in_batches(wa_db: Database) -> None:
    seed_keys(wa_db, 10_000, expired=True, per_session=250)
    seed_keys(wa_db, 300, expired=False, session_prefix="live", key_type="session")
    AuthStateStore(wa_db, "keeper").set_keys({"identity-key": {"a": {"k": b"id"}}})
    calls: list[tuple[int, int]] = []
    with capture_logs() as logs:
        result = cleanup_expired_keys(
            wa_db, batch_size=1000, progress=lambda done, total: calls.append((done, total))
        )
    completed = [line for line in logs if line.get("event") == "whatsapp_cleanup_completed"]
    assert len(completed) == 1
    assert completed[0]["deleted"] == 10_000
    assert completed[0]["batches"] == 10
    assert result["deleted"] == 10_000
    assert result["batches"] == 10
    assert result["dry_run"] is False
    assert result["duration_ms"] > 0
    assert count_keys(wa_db) == 301
    assert count_keys(wa_db, "expires_at <= now()") == 0
    assert AuthStateStore(wa_db, "keeper").get_keys("identity-key", ["a"]) == {"a": {"k": b"id"}}
    assert calls[0] == (0, 10_000)
    assert calls[-1] == (10_000, 10_000)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    with wa_db.connection() as conn:
        run = conn.execute(
            "SELECT deleted, batches, batch_size, error FROM whatsapp_cleanup_runs"
        ).fetchall()
    assert run == [(10_000, 10, 1000, None)]
    again = cleanup_expired_keys(wa_db)
    assert again["deleted"] == 0
    assert again["batches"] == 0


def test_cleanup_refuses_a_bad_batch_size(wa_db: Database) -> None:
    for bad in (0, -1, True):
        with pytest.raises(ValidationError):
            cleanup_expired_keys(wa_db, batch_size=bad)


def test_failed_cleanup_is_reported_once_and_raises(unreachable_db: Database) -> None:
    with capture_events() as events, pytest.raises(DataLayerError):
        cleanup_expired_keys(unreachable_db)
    assert len(events) == 1
    assert events[0]["tags"]["operation"] == "cleanup_expired_keys"


@pytest.mark.sync_only  # threads; the async flavour's 50 tasks: test_whatsapp_async.py
def test_concurrent_writers_of_overlapping_keys_do_not_deadlock(wa_db: Database) -> None:
    ids = [str(n) for n in range(60)]
    errors: list[BaseException] = []

    def writer(order: list[str], tag: str) -> None:
        store = AuthStateStore(wa_db, "shared")
        try:
            for round_ in range(15):
                store.set_keys(
                    {"session": {key_id: {"by": tag, "round": round_} for key_id in order}}
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(ids, "forward")),
        threading.Thread(target=writer, args=(ids[::-1], "backward")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(AuthStateStore(wa_db, "shared").get_keys("session", ids)) == 60
