"""The PgBouncer fixture really pools in transaction mode in front of the suite's database."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from .conftest import PgBouncer


def test_queries_reach_the_suite_database(pgbouncer: PgBouncer, pg_url: str) -> None:
    with psycopg.connect(pgbouncer.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert row[0] == conninfo_to_dict(pg_url)["dbname"]


def test_pool_mode_is_transaction(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.admin_conninfo, autocommit=True) as conn:
        rows = conn.execute("SHOW CONFIG").fetchall()
    config = {row[0]: row[1] for row in rows}
    assert config["pool_mode"] == "transaction"
    assert int(config["default_pool_size"]) == pgbouncer.pool_size < 21


def test_startup_option_is_refused(pgbouncer: PgBouncer) -> None:
    # Why PgBouncer mode must set its statement timeout per transaction.
    with (
        pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"),
        psycopg.connect(pgbouncer.conninfo, options="-c statement_timeout=1000"),
    ):
        pass


def test_prepared_statements_are_unsafe_across_transactions(pgbouncer: PgBouncer) -> None:
    # Why PgBouncer mode turns psycopg's prepared statements off: a statement
    # prepared on one server connection is unknown on the next one.
    with (
        psycopg.connect(pgbouncer.conninfo, autocommit=True) as client,
        psycopg.connect(pgbouncer.conninfo) as other,
    ):
        other.execute("SELECT 1")  # its open transaction holds one server connection
        client.execute("PREPARE probe AS SELECT 1")  # so this lands on another one
        other.commit()  # LIFO reuse (server_round_robin = 0): the next statement gets it
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            client.execute("EXECUTE probe")


def test_prepare_threshold_none_prepares_nothing(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.conninfo, autocommit=True, prepare_threshold=None) as conn:
        for _ in range(20):
            conn.execute("SELECT 1")
        row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row == (0,)
