"""Migrations: every file in order, recorded, idempotent, concurrent-safe, the DESIGN schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datalayer import Database, DataLayerError, Settings, migrate
from datalayer._migrate import MIGRATIONS_DIR, pending_migrations
from errorkit.testing import capture_logs

ON_DISK = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql"))

# DESIGN.md's table: at least these columns, and the upsert key as a unique index.
DESIGN_SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "companies": (
        {"company_id", "title", "timezone", "phone", "is_active", "raw_data", "updated_at"},
        {"company_id"},
    ),
    "clients": (
        {
            "yclients_id", "company_id", "name", "phone", "email", "last_visit_date",
            "visit_count", "tags", "preferences", "updated_at",
        },
        {"yclients_id", "company_id"},
    ),
    "services": (
        {
            "yclients_id", "company_id", "title", "category_id", "price_min", "price_max",
            "duration", "is_active", "weight", "updated_at",
        },
        {"yclients_id", "company_id"},
    ),
    "staff": (
        {"yclients_id", "company_id", "name", "specialization", "is_active", "rating",
         "updated_at"},
        {"yclients_id", "company_id"},
    ),
    "staff_schedules": (
        {
            "yclients_staff_id", "company_id", "staff_name", "date", "is_working",
            "work_start", "work_end", "updated_at",
        },
        {"yclients_staff_id", "date", "company_id"},
    ),
    "bookings": (
        {
            "yclients_record_id", "company_id", "client_yclients_id", "client_phone",
            "staff_id", "service_ids", "datetime", "status", "cost", "updated_at",
        },
        {"yclients_record_id", "company_id"},
    ),
    "dialog_contexts": (
        {"user_id", "company_id", "state", "data", "messages", "last_activity"},
        {"user_id", "company_id"},
    ),
}  # fmt: skip


@pytest.fixture
def fresh_url(new_database: Any) -> Iterator[str]:
    """An empty database of its own, dropped afterwards."""
    with new_database("datalayer_migrate") as url:
        yield url


@pytest.fixture
def fresh_db(fresh_url: str) -> Iterator[Database]:
    with Database(fresh_url, Settings(max_connections=4, service_name="migrate-test")) as db:
        yield db


def recorded(db: Database) -> list[str]:
    with db.connection() as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_applies_every_file_in_order_once(fresh_db: Database) -> None:
    assert pending_migrations(fresh_db) == ON_DISK
    assert migrate(fresh_db) == ON_DISK
    assert recorded(fresh_db) == ON_DISK
    assert migrate(fresh_db) == []  # idempotent
    assert pending_migrations(fresh_db) == []
    assert recorded(fresh_db) == ON_DISK


def test_concurrent_migrations_apply_each_file_once(fresh_url: str, fresh_db: Database) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Database(fresh_url, Settings(max_connections=1, service_name="m")) as db:
                results.append(migrate(db))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == ON_DISK  # every version exactly once across the four callers
    assert recorded(fresh_db) == ON_DISK


def test_a_failing_file_rolls_back_alone(fresh_db: Database, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int PRIMARY KEY);")
    (tmp_path / "0002_bad.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();"
    )
    with pytest.raises(DataLayerError):
        migrate(fresh_db, folder=tmp_path)
    assert recorded(fresh_db) == ["0001_good"]
    with fresh_db.connection() as conn:
        tables = conn.execute(
            "SELECT to_regclass('good') IS NOT NULL, to_regclass('half_done') IS NULL"
        ).fetchone()
    assert tables == (True, True)
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half_done (id int);")
    assert migrate(fresh_db, folder=tmp_path) == ["0002_bad"]


def test_a_changed_applied_file_is_warned_about(fresh_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "0001_x.sql"
    path.write_text("CREATE TABLE x (id int);")
    migrate(fresh_db, folder=tmp_path)
    path.write_text("CREATE TABLE x (id bigint);")
    with capture_logs() as logs:
        assert migrate(fresh_db, folder=tmp_path) == []
    changed = [line for line in logs if line["event"] == "migration_changed_after_apply"]
    assert [line["version"] for line in changed] == ["0001_x"]


@pytest.mark.parametrize("table", sorted(DESIGN_SCHEMA))
def test_design_schema(db: Database, table: str) -> None:
    columns, key = DESIGN_SCHEMA[table]
    with db.connection() as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s",
                (table,),
            )
        }
        unique_keys: list[Any] = [
            set(r[0])
            for r in conn.execute(
                "SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL"
                " GROUP BY i.indexrelid",
                (table,),
            )
        ]
    assert columns <= present, columns - present
    assert key in unique_keys
