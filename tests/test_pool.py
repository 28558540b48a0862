"""The pool against the real server: settings applied, load, exhaustion, faults, monitoring."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from datalayer import Database, DataLayerError, QueryTimeoutError, Settings, TransientError
from datalayer.repositories import CompaniesRepository
from errorkit.testing import capture_logs


@pytest.fixture
def make_db(pg_url: str, db: Database) -> Iterator[Any]:
    """Build Databases on the suite's (migrated) database; all closed at the end."""
    made: list[Database] = []

    def make(**settings: Any) -> Database:
        database = Database(pg_url, Settings(**{"service_name": "pool-test", **settings}))
        made.append(database)
        return database

    yield make
    for database in made:
        database.close()


def backend_pid(db: Database) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def terminate(pg_url: str, pid: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):  # until the server has let the backend go
            gone = admin.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)", (pid,)
            ).fetchone()
            if gone and gone[0]:
                return
            time.sleep(0.01)


def test_settings_reach_the_server(make_db: Any) -> None:
    db = make_db(
        service_name="svc-settings",
        statement_timeout=7,
        connect_timeout=3,
        pool_timeout=4,
        max_lifetime=120,
        max_idle=45,
        min_connections=1,
        max_connections=2,
    )
    with db.connection() as conn:
        assert conn.autocommit
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)
        row = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row == ("svc-settings",)
        assert conn.info.get_parameters()["connect_timeout"] == "3"
        assert conn.prepare_threshold is not None
    pool = db.pool
    assert (pool.min_size, pool.max_size, pool.timeout) == (1, 2, 4)
    assert (pool.max_lifetime, pool.max_idle) == (120, 45)


def test_pgbouncer_mode_sets_the_timeout_per_transaction(make_db: Any) -> None:
    db = make_db(pgbouncer=True, statement_timeout=2, max_connections=1)
    with db.pool.connection() as raw:  # no startup option: the session keeps the server's value
        assert raw.execute("SHOW statement_timeout").fetchone() != ("2s",)
    with db.connection() as conn:  # single statements too: each lease is a short transaction
        assert conn.prepare_threshold is None
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)
    with db.transaction() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)


def test_statement_timeout_raises_query_timeout_error(make_db: Any) -> None:
    db = make_db(statement_timeout=0.2)
    with pytest.raises(QueryTimeoutError) as info, db.connection() as conn:
        conn.execute("SELECT pg_sleep(3)")
    assert info.value.sqlstate == "57014"
    assert db.ping() >= 0  # the connection survived the cancel
    assert db.stats()["in_use"] == 0


def test_50_threads_x_20_calls_through_a_pool_of_3(clean_db: Database, make_db: Any) -> None:
    db = make_db(max_connections=3, pool_timeout=60)
    companies = CompaniesRepository(db)

    def twenty_calls(worker: int) -> int:
        for i in range(20):
            if i % 2:
                companies.upsert({"company_id": worker, "title": f"w{worker} #{i}"})
            else:
                companies.find_one({"company_id": worker})
        return worker

    with capture_logs() as logs, ThreadPoolExecutor(max_workers=50) as executor:
        done = list(executor.map(twenty_calls, range(50)))
    assert done == list(range(50))
    assert companies.count() == 50
    stats = db.stats()
    assert stats["pool_size"] <= 3
    assert stats["pool_available"] == stats["pool_size"]  # every connection came back
    assert stats["in_use"] == 0
    waiting = [line for line in logs if line["event"] == "pool_callers_waiting"]
    assert waiting, "callers queued for a connection, and that was not logged"
    assert len(waiting) <= 2  # rate-limited, not one per caller
    assert waiting[0]["pool_max"] == 3


def test_a_full_pool_raises_transient_error_after_the_pool_timeout(make_db: Any) -> None:
    db = make_db(max_connections=1, pool_timeout=0.3)
    outcome: list[BaseException] = []
    with db.connection():
        started = time.monotonic()

        def second_caller() -> None:
            try:
                db.ping()
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=second_caller)
        worker.start()
        worker.join(timeout=30)
        waited = time.monotonic() - started
    assert len(outcome) == 1 and isinstance(outcome[0], TransientError)
    assert waited >= 0.3
    assert db.ping() >= 0  # usable again once the connection is back


def test_a_killed_idle_connection_is_replaced_before_use(pg_url: str, make_db: Any) -> None:
    db = make_db(max_connections=1)
    pid = backend_pid(db)
    terminate(pg_url, pid)
    # Recently used, so no full check: the socket poll alone finds it dead.
    new_pid = backend_pid(db)
    assert new_pid != pid
    assert db.stats()["pool_size"] == 1


def test_a_connection_killed_mid_query_is_transient_and_replaced(pg_url: str, make_db: Any) -> None:
    db = make_db(max_connections=1)
    pid = backend_pid(db)
    outcome: list[BaseException] = []

    def long_query() -> None:
        try:
            with db.connection() as conn:
                conn.execute("SELECT pg_sleep(30)")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=long_query)
    worker.start()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for _ in range(500):
            busy = admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
            ).fetchone()
            if busy:
                break
            time.sleep(0.01)
    terminate(pg_url, pid)
    worker.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], TransientError)
    assert backend_pid(db) != pid  # the next call gets a fresh connection
    assert db.stats()["in_use"] == 0


def test_usage_counts_only_connections_in_use(make_db: Any) -> None:
    db = make_db(min_connections=2, max_connections=4, pool_usage_warn=0.75)
    db.pool.wait(timeout=10)
    for _ in range(500):  # a connection still being opened counts as taken
        if db.stats()["pool_available"] == db.stats()["pool_size"]:
            break
        time.sleep(0.01)
    assert db.stats()["pool_size"] >= 2
    assert db.stats()["usage"] == 0  # idle connections are not busy
    with capture_logs() as logs, db.connection(), db.connection():
        assert db.stats()["usage"] == 0.5
        assert not [line for line in logs if line["event"] == "pool_usage_high"]
        with db.connection():
            assert db.stats()["usage"] == 0.75
    high = [line for line in logs if line["event"] == "pool_usage_high"]
    assert len(high) == 1
    assert (high[0]["in_use"], high[0]["pool_max"], high[0]["usage"]) == (3, 4, 0.75)


def test_over_budget_logs_a_warning_on_the_first_connection(make_db: Any) -> None:
    with capture_logs() as logs:
        db = make_db(expected_services=100_000)
        # The constructor waits on nothing: the check runs when the pool first connects.
        assert [line for line in logs if line["event"] == "pool_over_budget"] == []
        db.ping()
    warning = [line for line in logs if line["event"] == "pool_over_budget"]
    assert len(warning) == 1
    assert warning[0]["planned"] == 100_000 * 3
    assert db.budget().verdict == "over"


def test_ping_and_stats(make_db: Any) -> None:
    db = make_db()
    assert db.ping() > 0
    stats = db.stats()
    for key in ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting"):
        assert key in stats
    assert stats["pool_max"] == 3


def test_close_and_context_manager(pg_url: str) -> None:
    with Database(pg_url, Settings(service_name="pool-test")) as db:
        assert db.ping() > 0
    assert db.pool.closed


def test_only_a_long_idle_connection_pays_a_round_trip_check(make_db: Any) -> None:
    db = make_db(max_connections=1, check_idle_after=0.2)
    sent: list[str] = []

    class Recording(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            sent.append(query if isinstance(query, str) else repr(query))
            return super().execute(query, params, **kwargs)

    with db.connection() as conn:
        conn.cursor_factory = Recording
    with db.connection():
        pass
    assert sent == []  # recently used: the socket poll alone
    time.sleep(0.3)
    with db.connection():
        pass
    assert sent == [""]  # idle past the window: one empty query


def test_max_lifetime_really_recycles_connections(make_db: Any) -> None:
    db = make_db(max_connections=1, max_lifetime=0.3)
    first = backend_pid(db)
    time.sleep(0.4)
    backend_pid(db)  # handed back past its lifetime: the pool discards it
    assert backend_pid(db) != first


def test_the_conninfo_options_are_kept_beside_the_timeout(pg_url: str) -> None:
    url = make_conninfo(pg_url, options="-c search_path=pg_catalog,public")
    settings = Settings(service_name="pool-test", statement_timeout=9)
    with Database(url, settings) as db, db.connection() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("9s",)
        assert conn.execute("SHOW search_path").fetchone() == ("pg_catalog,public",)


def test_a_server_down_at_start_is_an_outage_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(service_name="pool-test", pool_timeout=0.5, connect_timeout=1)
    password = "pw-never-logged-7f3a"
    conninfo = f"host=127.0.0.1 port=1 user=postgres dbname=postgres password={password}"
    with capture_logs() as logs:
        started = time.perf_counter()
        db = Database(conninfo, settings)
        print(f"Database() with the server down returned in {time.perf_counter() - started:.4f} s")
    try:
        with capture_logs() as logs:
            with pytest.raises(TransientError) as info:
                db.ping()
            with pytest.raises(TransientError, match="unreachable"):
                db.ping()  # the breaker is open: no second wait
        unreachable = [line for line in logs if line["event"] == "database_unreachable"]
        assert len(unreachable) == 1
        # The password reaches no log line (ours, or psycopg_pool's reconnect warnings),
        # no repr and no error text, the cause included.
        seen = [repr(logs), repr(db), repr(db.settings), caplog.text]
        error: BaseException | None = info.value
        while error is not None:
            seen.append(f"{error!r} {error}")
            error = error.__cause__ or error.__context__
        assert not [text for text in seen if password in text]
    finally:
        db.close()


def test_a_closed_database_says_so(pg_url: str) -> None:
    db = Database(pg_url, Settings(service_name="pool-test"))
    db.close()
    with pytest.raises(DataLayerError, match="closed") as info:
        db.ping()
    assert type(info.value) is DataLayerError


# --- the parking stack (Database._park) ------------------------------------------------


def test_a_returned_connection_is_reused_without_a_trip_through_the_pool(make_db: Any) -> None:
    db = make_db(max_connections=2)
    with db.connection() as first:
        pass
    requests = db.pool.get_stats().get("requests_num", 0)
    for _ in range(5):
        with db.connection() as again:
            assert again is first
    assert db.pool.get_stats().get("requests_num", 0) == requests  # the pool was not asked
    stats = db.stats()
    assert stats["in_use"] == 0 and stats["pool_available"] == stats["pool_size"]


def test_a_caller_waiting_on_the_pool_gets_the_next_returned_connection(make_db: Any) -> None:
    """Parking never starves a waiter: with one waiting, a return goes to the pool."""
    db = make_db(max_connections=1, pool_timeout=5.0)
    outcome: list[Any] = []
    holding = db.connection()
    held = holding.__enter__()
    waiter = threading.Thread(target=lambda: outcome.append(db.ping()))
    waiter.start()
    for _ in range(200):  # until the waiter is inside the pool's getconn
        if db._pool_waiters:
            break
        time.sleep(0.005)
    assert db._pool_waiters == 1
    holding.__exit__(None, None, None)
    waiter.join(10)
    assert len(outcome) == 1 and outcome[0] > 0  # served, not timed out
    # The waiter got the held connection through the pool, then parked it on return.
    assert db._parked == [held]


def test_parked_connections_past_their_lifetime_or_at_close_go_back(make_db: Any) -> None:
    db = make_db(max_connections=2)
    with db.connection() as conn:
        pass
    assert db._parked == [conn]
    with db.connection() as conn:
        conn.expires_at = 0.0  # past max_lifetime: the pool decides (it replaces it)
    assert db._parked == []
    with db.connection():
        pass
    db.close()
    assert db._parked == []
    assert db.pool.closed
