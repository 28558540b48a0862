"""Connections to a server that went away or became read-only are discarded, not reused.

What a failover looks like from one connection: the old primary, demoted or
restarted as a standby, answers writes with 25006 (read_only_sql_transaction),
or terminates the session (57P01). Without a failover cluster, the same answers
come from the real server: a pooled session made read-only, and a backend
terminated by pg_terminate_backend. The failover itself is
tests/reliability/test_failover.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors

from datalayer import AsyncDatabase, Database, DataLayerError, Settings, TransientError
from datalayer._database_base import server_gone
from datalayer.errors import translate
from datalayer.repositories import AsyncClientsRepository, ClientsRepository

COMPANY = 9160


@pytest.fixture
def make_db(pg_url: str, db: Database) -> Iterator[Any]:
    made: list[Database] = []

    def make(**settings: Any) -> Database:
        database = Database(pg_url, Settings(**{"service_name": "gone-test", **settings}))
        made.append(database)
        return database

    yield make
    for database in made:
        database.close()


def client(n: int) -> dict[str, Any]:
    return {"yclients_id": n, "company_id": COMPANY, "name": f"Client {n}"}


def test_which_errors_mean_the_server_is_gone() -> None:
    assert server_gone(pg_errors.ReadOnlySqlTransaction("read-only"))
    assert server_gone(pg_errors.AdminShutdown("terminating connection"))
    assert server_gone(pg_errors.CrashShutdown("crash"))
    assert server_gone(pg_errors.CannotConnectNow("starting up"))
    assert server_gone(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert server_gone(pg_errors.ConnectionFailure("08006"))
    # Translated already (a repository call inside a transaction): the cause decides.
    read_only = pg_errors.ReadOnlySqlTransaction("read-only")
    translated = translate(read_only)
    translated.__cause__ = read_only
    assert server_gone(translated)
    # The statement's own failures keep the connection.
    assert not server_gone(pg_errors.QueryCanceled("statement timeout"))
    assert not server_gone(pg_errors.UniqueViolation("duplicate"))
    assert not server_gone(pg_errors.SerializationFailure("retry"))
    assert not server_gone(ValueError("not a database error"))


def _pids(conns: list[Any]) -> set[int]:
    return {conn.info.backend_pid for conn in conns}


def test_a_read_only_answer_discards_every_connection_to_that_server(make_db: Any) -> None:
    db = make_db(max_connections=2)
    clients = ClientsRepository(db)
    # Both pool connections become read-only sessions, as on a demoted primary.
    with db.connection() as first, db.connection() as second:
        for conn in (first, second):
            conn.execute("SET default_transaction_read_only = on")
        read_only = _pids([first, second])
    with pytest.raises(DataLayerError) as info:
        clients.upsert(client(1))
    assert info.value.sqlstate == "25006"
    # The write that follows lands on a fresh connection, not on the other read-only one.
    stored = clients.upsert(client(2))
    assert stored.yclients_id == 2
    with db.connection() as conn:
        assert conn.info.backend_pid not in read_only
    assert db.stats()["in_use"] == 0


def test_a_read_only_answer_inside_a_transaction_discards_its_connection(make_db: Any) -> None:
    db = make_db(max_connections=1)
    clients = ClientsRepository(db)
    with db.connection() as conn:
        conn.execute("SET default_transaction_read_only = on")
        read_only = conn.info.backend_pid
    with pytest.raises(DataLayerError) as info, db.transaction():
        clients.upsert(client(3))
    assert info.value.sqlstate == "25006"
    with db.transaction() as conn:
        clients.upsert(client(4))
        assert conn.info.backend_pid != read_only


def test_a_terminated_backend_is_discarded(pg_url: str, make_db: Any) -> None:
    db = make_db(max_connections=1)
    with pytest.raises(TransientError), db.transaction() as conn:
        pid = conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.05)  # the FATAL 57P01 is on the socket before the next statement
        conn.execute("SELECT 1")
    assert conn.closed
    with db.connection() as fresh:
        assert fresh.info.backend_pid != pid
    assert db.stats()["in_use"] == 0


def test_async_a_read_only_answer_discards_the_connection(pg_url: str, db: Database) -> None:
    async def scenario() -> tuple[set[int], int, str | None]:
        settings = Settings(service_name="gone-test-async", max_connections=2)
        async with AsyncDatabase(pg_url, settings) as adb:
            clients = AsyncClientsRepository(adb)
            async with adb.connection() as first, adb.connection() as second:
                for conn in (first, second):
                    await conn.execute("SET default_transaction_read_only = on")
                read_only = {first.info.backend_pid, second.info.backend_pid}
            try:
                await clients.upsert(client(5))
            except DataLayerError as exc:
                sqlstate = exc.sqlstate
            else:
                sqlstate = None
            await clients.upsert(client(6))
            async with adb.connection() as conn:
                return read_only, conn.info.backend_pid, sqlstate

    read_only, fresh, sqlstate = asyncio.run(scenario())
    assert sqlstate == "25006"
    assert fresh not in read_only
