"""POSTGRES_PGBOUNCER=true against a real PgBouncer: what the mode changes, and that it holds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from datalayer import (
    AsyncDatabase,
    Database,
    QueryTimeoutError,
    Settings,
    TransientError,
    check_budget,
)
from datalayer.repositories import ClientsRepository

from .conftest import PgBouncer


@pytest.fixture
def short_timeout_db(pgbouncer: PgBouncer, db: Database) -> Iterator[Database]:
    settings = Settings(
        pgbouncer=True, statement_timeout=0.2, max_connections=2, service_name="pgb-timeout"
    )
    database = Database(pgbouncer.conninfo, settings)
    try:
        yield database
    finally:
        database.close()


def test_the_suite_fixtures_here_go_through_pgbouncer(
    db: Database, clean_db: Database, direct_db: Database, pgbouncer: PgBouncer
) -> None:
    assert clean_db is db
    assert db.settings.pgbouncer is True
    assert conninfo_to_dict(db.pool.conninfo)["port"] == str(pgbouncer.port)
    assert direct_db is not db
    assert direct_db.settings.pgbouncer is False


def test_no_prepared_statements_on_pooled_connections(clean_db: Database) -> None:
    clients = ClientsRepository(clean_db)
    for _ in range(10):  # psycopg prepares from the 6th execution when allowed
        clients.count({"company_id": 1})
    with clean_db.connection() as conn:
        assert conn.prepare_threshold is None
        row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row == (0,)


def test_statement_timeout_is_set_per_transaction(db: Database) -> None:
    expected = f"{round(db.settings.statement_timeout * 1000)}ms"
    with db.transaction() as conn:
        row = conn.execute("SHOW statement_timeout").fetchone()
    assert row is not None
    assert _as_ms(row[0]) == _as_ms(expected)


def test_transaction_timeout_leaves_no_session_state_behind(
    db: Database, pgbouncer: PgBouncer
) -> None:
    # SET LOCAL ends with the transaction: the next client of the same server
    # connection sees the server's own value, not ours.
    with psycopg.connect(pgbouncer.conninfo, autocommit=True) as probe:
        row = probe.execute("SHOW statement_timeout").fetchone()
    assert row is not None
    server_default = row[0]
    for _ in range(5):
        with db.transaction():
            pass
    with psycopg.connect(pgbouncer.conninfo, autocommit=True) as probe:
        for _ in range(pgbouncer.pool_size):
            row = probe.execute("SHOW statement_timeout").fetchone()
            assert row is not None and row[0] == server_default


def test_slow_statement_in_a_transaction_times_out(short_timeout_db: Database) -> None:
    with pytest.raises(QueryTimeoutError) as caught, short_timeout_db.transaction() as conn:
        conn.execute("SELECT pg_sleep(5)")
    assert caught.value.sqlstate == "57014"
    # The connection went back healthy: the next transaction works.
    with short_timeout_db.transaction() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_server_connection_killed_mid_transaction_is_transient_and_recovers(
    short_timeout_db: Database, direct_db: Database
) -> None:
    db = short_timeout_db
    with pytest.raises(TransientError), db.transaction() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        with direct_db.connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        conn.execute("SELECT 1")
    # PgBouncer opens a new server connection, the pool a new client one.
    with db.transaction() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert db.ping() >= 0


def test_savepoint_rollback_keeps_the_outer_work(clean_db: Database) -> None:
    clients = ClientsRepository(clean_db)
    with clean_db.transaction():
        clients.upsert({"yclients_id": 1, "company_id": 1, "name": "kept"})
        with pytest.raises(RuntimeError), clean_db.transaction():
            clients.upsert({"yclients_id": 2, "company_id": 1, "name": "rolled back"})
            raise RuntimeError("roll the savepoint back")
    assert [c.yclients_id for c in clients.find_many({"company_id": 1})] == [1]


def test_concurrent_transactions_each_see_only_their_own_work(clean_db: Database) -> None:
    # Many threads, few server connections: a transaction must never land on a
    # server connection another transaction is using.
    clients = ClientsRepository(clean_db)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                key = n * 100 + i
                with clean_db.transaction() as conn:
                    clients.upsert({"yclients_id": key, "company_id": 7, "name": f"c{key}"})
                    row = conn.execute("SELECT txid_current_if_assigned()").fetchone()
                    assert row is not None and row[0] is not None
                    assert clients.find_one({"yclients_id": key, "company_id": 7}) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert clients.count({"company_id": 7}) == 60


def test_budget_reads_the_real_server_through_pgbouncer(db: Database, direct_db: Database) -> None:
    through = db.budget()
    direct = check_budget(direct_db, expected_services=7, max_size=3)
    assert through.max_connections == direct.max_connections
    assert through.reserved == direct.reserved
    assert through.planned == db.settings.expected_services * db.settings.max_connections


def _as_ms(value: Any) -> int:
    text = str(value)
    for unit, factor in (("ms", 1), ("s", 1000), ("min", 60_000)):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * factor
    return int(text)


# --- a timeout on single statements too ---------------------------------------------


def _pool_rows(pgbouncer: PgBouncer, dbname: str) -> list[dict[str, Any]]:
    with psycopg.connect(pgbouncer.admin_conninfo, autocommit=True) as admin:
        cur = admin.execute("SHOW POOLS")
        names = [column.name for column in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur if row[0] == dbname]


def _single_statement_timeout(elapsed: float, flavour: str) -> None:
    print(f"\n[{flavour}] pg_sleep(5), 1 s timeout, via PgBouncer: failed after {elapsed:.2f} s")


def test_a_single_statement_gets_the_timeout_and_frees_the_server_connection(
    pgbouncer: PgBouncer,
) -> None:
    settings = Settings(
        pgbouncer=True, statement_timeout=1.0, max_connections=1, service_name="pgb-single"
    )
    dbname = str(conninfo_to_dict(pgbouncer.conninfo)["dbname"])
    with Database(pgbouncer.conninfo, settings) as one:
        started = time.perf_counter()
        with pytest.raises(QueryTimeoutError) as caught, one.connection() as conn:
            conn.execute("SELECT pg_sleep(5)")
        elapsed = time.perf_counter() - started
        _single_statement_timeout(elapsed, "sync")
        assert caught.value.sqlstate == "57014"
        assert elapsed < 4.5  # the timeout ended it, not pg_sleep
        # The server connection went back to PgBouncer: nothing is active on it.
        assert all(row["sv_active"] == 0 for row in _pool_rows(pgbouncer, dbname))
        # And the pool's one connection serves the next call at once.
        with one.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)


def test_async_a_single_statement_gets_the_timeout(pgbouncer: PgBouncer) -> None:
    settings = Settings(
        pgbouncer=True, statement_timeout=1.0, max_connections=1, service_name="pgb-single-a"
    )

    async def scenario() -> tuple[float, str | None, Any]:
        async with AsyncDatabase(pgbouncer.conninfo, settings) as one:
            started = time.perf_counter()
            sqlstate = None
            try:
                async with one.connection() as conn:
                    await conn.execute("SELECT pg_sleep(5)")
            except QueryTimeoutError as exc:
                sqlstate = exc.sqlstate
            elapsed = time.perf_counter() - started
            async with one.connection() as conn:
                row = await (await conn.execute("SELECT 1")).fetchone()
            return elapsed, sqlstate, row

    elapsed, sqlstate, row = asyncio.run(scenario())
    _single_statement_timeout(elapsed, "async")
    assert sqlstate == "57014"
    assert elapsed < 4.5
    assert row == (1,)
