"""DataLayer on a failing server: one report per failure, the declared policy, no PII.

The server fails for real: the facade connects as a role that holds no
privilege on the domain tables, so every statement of every method is refused
by PostgreSQL ("permission denied"). Other real failures (a lock wait that
times out, a table renamed inside the caller's transaction, a backend
terminated mid-statement) cover the other kinds.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from datalayer import Database, DataLayer
from datalayer._config import Settings
from datalayer.errors import DataLayerError, QueryTimeoutError, TransientError, ValidationError
from errorkit.testing import capture_events, capture_logs

PHONE = "8 (968) 648-44-88"
PHONE_FORMS = ("79686484488", "9686484488", "968) 648-44-88", "648-44-88", "6484488")
NAME = "Анна Каренина"
NAME_PARTS = ("Анна", "Каренина")

CLIENT = {"yclients_id": 101, "company_id": 1, "name": NAME, "phone": "+7 968 648 44 88"}

# One valid call per facade method: (method, args, kwargs).
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_dialog_context", ("79686484488@c.us", 1), {}),
    (
        "upsert_dialog_context",
        ({"user_id": "79686484488@c.us", "company_id": 1, "state": "greeting"},),
        {},
    ),
    ("get_client_by_phone", (PHONE, 1), {}),
    ("get_client_by_id", (101,), {}),
    ("get_client_appointments", (101,), {}),
    ("get_upcoming_appointments", (101, 1), {}),
    ("search_clients_by_name", (1, NAME), {}),
    ("upsert_client", (CLIENT,), {}),
    ("upsert_clients", ([CLIENT, {**CLIENT, "yclients_id": 102}],), {}),
    ("get_staff_by_id", (5, 1), {}),
    ("get_staff", (1,), {}),
    ("get_staff_schedule", (5, "2026-12-01"), {}),
    ("get_staff_schedules", (1,), {"staff_id": 5, "date_from": "2026-12-01"}),
    (
        "upsert_staff_schedules",
        (
            [
                {
                    "yclients_staff_id": 5,
                    "company_id": 1,
                    "date": "2026-12-01",
                    "staff_name": NAME,
                    "is_working": True,
                }
            ],
        ),
        {},
    ),
    ("get_services", (1,), {}),
    ("get_service_by_id", (7,), {}),
    ("get_services_by_category", (1, 3), {}),
    ("upsert_services", ([{"yclients_id": 7, "company_id": 1, "title": "Haircut"}],), {}),
    ("get_company", (1,), {}),
    ("upsert_company", ({"company_id": 1, "title": "Salon", "phone": PHONE},), {}),
]
METHODS = [name for name, _, _ in CALLS]
IDS = METHODS


def _is_write(method: str) -> bool:
    return method.startswith("upsert_")


def _default(method: str) -> Any:
    """What a read returns after a reported failure: [] for lists, else None."""
    result = getattr(DataLayer, method).__annotations__["return"]
    return [] if str(result).startswith("list") else None


def _tags(event: dict[str, Any]) -> dict[str, Any]:
    tags = event.get("tags") or {}
    return dict(tags) if not isinstance(tags, dict) else tags


def _assert_reported_once(
    events: list[dict[str, Any]], logs: list[dict[str, Any]], method: str
) -> None:
    assert len(events) == 1, events
    tags = _tags(events[0])
    assert tags["component"] == "data-layer"
    assert tags["operation"] == method
    failed = [line for line in logs if line.get("event") == "operation_failed"]
    assert len(failed) == 1, logs
    assert failed[0]["component"] == "data-layer"
    assert failed[0]["operation"] == method
    assert failed[0]["sentry_event_id"] == events[0]["event_id"]


def _assert_no_pii(*reports: object) -> None:
    text = json.dumps(reports, default=str, ensure_ascii=False)
    for fragment in (*PHONE_FORMS, *NAME_PARTS):
        assert fragment not in text, fragment


@pytest.fixture(scope="module")
def denied_role(db: Database, pg_url: str) -> Iterator[str]:
    """A login role with no privilege on any domain table."""
    role = f"facade_denied_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def denied_db(denied_role: str, pg_url: str, flavour: str) -> Iterator[Database]:
    database = Database(make_conninfo(pg_url, user=denied_role))
    try:
        yield database
    finally:
        database.close()


def _call(facade: DataLayer, method: str) -> Any:
    _, args, kwargs = next(c for c in CALLS if c[0] == method)
    return getattr(facade, method)(*args, **kwargs)


@pytest.mark.sync_only
def test_calls_cover_every_facade_method() -> None:
    from datalayer._policy import POLICY_ATTRIBUTE

    declared = {
        name
        for name in dir(DataLayer)
        if not name.startswith("_") and hasattr(getattr(DataLayer, name), POLICY_ATTRIBUTE)
    }
    assert set(METHODS) == declared
    assert len(METHODS) == 20


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_failure_is_reported_once_then_policy(denied_db: Database, method: str) -> None:
    facade = DataLayer(denied_db)
    with capture_events() as events, capture_logs() as logs:
        if _is_write(method):
            with pytest.raises(DataLayerError) as info:
                _call(facade, method)
            assert info.value.sqlstate == "42501"  # insufficient_privilege, from the server
            assert not isinstance(info.value, ValidationError)
        else:
            assert _call(facade, method) == _default(method)
    _assert_reported_once(events, logs, method)
    assert _tags(events[0])["error.kind"] == "internal"
    _assert_no_pii(events, logs)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_strict_facade_reraises_reads(denied_db: Database, method: str) -> None:
    facade = DataLayer(denied_db, strict=True)
    with capture_events() as events, capture_logs() as logs:
        with pytest.raises(DataLayerError) as info:
            _call(facade, method)
        assert info.value.sqlstate == "42501"
    _assert_reported_once(events, logs, method)
    _assert_no_pii(events, logs)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_inside_a_transaction_every_failure_reraises(denied_db: Database, method: str) -> None:
    facade = DataLayer(denied_db)
    with capture_events() as events, capture_logs() as logs:
        with pytest.raises(DataLayerError) as info, denied_db.transaction():
            _call(facade, method)
        assert info.value.sqlstate == "42501"
        assert not denied_db.in_transaction()
    # The transaction is a boundary too; the facade, innermost, reported it: once.
    _assert_reported_once(events, logs, method)
    _assert_no_pii(events, logs)


def test_read_inside_transaction_with_renamed_table_reraises(clean_db: Database) -> None:
    facade = DataLayer(clean_db)
    with capture_events() as events, capture_logs() as logs:
        with pytest.raises(DataLayerError) as info, clean_db.transaction() as conn:
            conn.execute("ALTER TABLE clients RENAME TO clients_renamed_by_test")
            facade.get_client_by_id(101)
        assert info.value.sqlstate == "42P01"  # undefined_table
    _assert_reported_once(events, logs, "get_client_by_id")
    # The rename was rolled back with the transaction.
    assert facade.get_client_by_id(101) is None


@pytest.fixture
def lock_db(clean_db: Database, pg_url: str) -> Iterator[Database]:
    """A Database on the test database whose statements give up after 300 ms."""
    database = Database(pg_url, Settings(statement_timeout=0.3))
    try:
        yield database
    finally:
        database.close()


def test_write_blocked_by_a_row_lock_times_out_and_raises(
    clean_db: Database, lock_db: Database, pg_url: str
) -> None:
    DataLayer(clean_db).upsert_company({"company_id": 1, "title": "Salon"})
    facade = DataLayer(lock_db)
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT 1 FROM companies WHERE company_id = 1 FOR UPDATE")
        with (
            capture_events() as events,
            capture_logs() as logs,
            pytest.raises(QueryTimeoutError) as info,
        ):
            facade.upsert_company({"company_id": 1, "title": "Salon renamed"})
        holder.rollback()
    assert info.value.sqlstate == "57014"  # query_canceled: statement_timeout
    _assert_reported_once(events, logs, "upsert_company")
    assert _tags(events[0])["error.kind"] == "timeout"
    assert events[0]["level"] == "warning"


def test_read_blocked_by_a_table_lock_times_out_and_returns_default(
    clean_db: Database, lock_db: Database, pg_url: str
) -> None:
    facade = DataLayer(lock_db)
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE staff IN ACCESS EXCLUSIVE MODE")
        with capture_events() as events, capture_logs() as logs:
            assert facade.get_staff(1) == []
        holder.rollback()
    _assert_reported_once(events, logs, "get_staff")
    assert _tags(events[0])["error.kind"] == "timeout"


def test_backend_terminated_mid_statement_is_transient(clean_db: Database, pg_url: str) -> None:
    """pg_terminate_backend on the facade's connection while it waits on a lock."""
    facade = DataLayer(clean_db, strict=True)
    marker = f"facade-terminate-{uuid.uuid4().hex[:8]}"
    errors: list[BaseException] = []

    def terminate_waiter() -> None:
        with psycopg.connect(pg_url, autocommit=True) as killer:
            for _ in range(200):
                row = killer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s AND datname = current_database()",
                    ("%services%",),
                ).fetchone()
                if row:
                    killer.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    return
                time.sleep(0.02)
            errors.append(AssertionError(f"{marker}: no waiting backend found"))

    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE services IN ACCESS EXCLUSIVE MODE")
        killer = threading.Thread(target=terminate_waiter)
        killer.start()
        with capture_events() as events, capture_logs() as logs, pytest.raises(TransientError):
            facade.get_services(1)
        killer.join()
        holder.rollback()
    assert not errors
    _assert_reported_once(events, logs, "get_services")
    assert _tags(events[0])["error.kind"] == "transient"
    # The pool replaced the dead connection: the next call works.
    assert facade.get_services(1) == []


def test_reports_describe_personal_arguments_and_keep_ids(denied_db: Database) -> None:
    """Not to repeat: raw phone numbers and names sent to Sentry."""
    facade = DataLayer(denied_db)
    with capture_events() as events, capture_logs() as logs:
        facade.search_clients_by_name(1, NAME)
        facade.get_client_by_phone(PHONE, 1)
        with pytest.raises(DataLayerError):
            facade.upsert_client(CLIENT)
    arguments = [event["contexts"]["errorkit"]["arguments"] for event in events]
    assert arguments[0]["company_id"] == "1"
    assert "13 chars" in arguments[0]["name"]
    assert "chars" in arguments[1]["phone"]
    assert "yclients_id=101" in arguments[2]["client"]
    assert "company_id=1" in arguments[2]["client"]
    _assert_no_pii(events, logs)


def test_three_layers_report_once(denied_db: Database) -> None:
    """Not to repeat: the same error sent to Sentry by three layers.

    A facade write inside ``run_in_transaction`` inside ``transaction()``: three
    boundaries see the error; the innermost (the facade) reports it, once.
    """
    facade = DataLayer(denied_db)
    company = {"company_id": 1, "title": "Salon"}
    with (
        capture_events() as events,
        capture_logs() as logs,
        pytest.raises(DataLayerError),
        denied_db.transaction(),
    ):
        denied_db.run_in_transaction(lambda: facade.upsert_company(company))
    _assert_reported_once(events, logs, "upsert_company")
