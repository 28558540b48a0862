"""Settings from the environment, connection info, and the embedded server."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_attempts, conninfo_to_dict, make_conninfo

from datalayer import Database, Settings, migrate
from datalayer._config import conninfo_from_env, default_data_dir
from datalayer._embedded import stop_embedded
from datalayer.repositories import CompaniesRepository
from errorkit.testing import capture_logs

VARIABLES = {
    "POSTGRES_MAX_CONNECTIONS": ("max_connections", 3),
    "POSTGRES_MIN_CONNECTIONS": ("min_connections", 0),
    "POSTGRES_CONNECT_TIMEOUT": ("connect_timeout", 10.0),
    "POSTGRES_POOL_TIMEOUT": ("pool_timeout", 10.0),
    "POSTGRES_STATEMENT_TIMEOUT": ("statement_timeout", 60.0),
    "POSTGRES_MAX_LIFETIME": ("max_lifetime", 3600.0),
    "POSTGRES_MAX_IDLE": ("max_idle", 600.0),
    "POSTGRES_POOL_USAGE_WARN": ("pool_usage_warn", 0.8),
    "POSTGRES_EXPECTED_SERVICES": ("expected_services", 7),
    "POSTGRES_PGBOUNCER": ("pgbouncer", False),
    "SERVICE_NAME": ("service_name", "datalayer"),
}


def test_defaults_match_the_design_table() -> None:
    settings = Settings.from_env({})
    for field, default in VARIABLES.values():
        assert getattr(settings, field) == default, field
    assert settings == Settings()


def test_every_variable_is_read() -> None:
    env = {
        "POSTGRES_MAX_CONNECTIONS": "9",
        "POSTGRES_MIN_CONNECTIONS": "2",
        "POSTGRES_CONNECT_TIMEOUT": "3",
        "POSTGRES_POOL_TIMEOUT": "1.5",
        "POSTGRES_STATEMENT_TIMEOUT": "30",
        "POSTGRES_MAX_LIFETIME": "900",
        "POSTGRES_MAX_IDLE": "60",
        "POSTGRES_POOL_USAGE_WARN": "0.5",
        "POSTGRES_EXPECTED_SERVICES": "4",
        "POSTGRES_PGBOUNCER": "true",
        "SERVICE_NAME": "booking-bot",
    }
    s = Settings.from_env(env)
    assert (s.max_connections, s.min_connections, s.expected_services) == (9, 2, 4)
    assert (s.connect_timeout, s.pool_timeout, s.statement_timeout) == (3, 1.5, 30)
    assert (s.max_lifetime, s.max_idle, s.pool_usage_warn) == (900, 60, 0.5)
    assert s.pgbouncer is True and s.service_name == "booking-bot"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_connections = 1  # type: ignore[misc]


BAD_VALUES = [
    ("POSTGRES_MAX_CONNECTIONS", "abc"),
    ("POSTGRES_MAX_CONNECTIONS", "0"),
    ("POSTGRES_MAX_CONNECTIONS", "-1"),
    ("POSTGRES_MAX_CONNECTIONS", "2.5"),
    ("POSTGRES_MIN_CONNECTIONS", "-1"),
    ("POSTGRES_MIN_CONNECTIONS", "x"),
    ("POSTGRES_CONNECT_TIMEOUT", "0"),
    ("POSTGRES_CONNECT_TIMEOUT", "soon"),
    ("POSTGRES_POOL_TIMEOUT", "-1"),
    ("POSTGRES_STATEMENT_TIMEOUT", "0"),
    ("POSTGRES_STATEMENT_TIMEOUT", "nan"),
    ("POSTGRES_MAX_LIFETIME", "-5"),
    ("POSTGRES_MAX_IDLE", "inf"),
    ("POSTGRES_POOL_USAGE_WARN", "1.5"),
    ("POSTGRES_POOL_USAGE_WARN", "0"),
    ("POSTGRES_EXPECTED_SERVICES", "0"),
    ("POSTGRES_PGBOUNCER", "maybe"),
    ("SERVICE_NAME", "   "),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_min_above_max_names_both() -> None:
    with pytest.raises(ValueError, match=r"POSTGRES_MIN_CONNECTIONS.*POSTGRES_MAX_CONNECTIONS"):
        Settings.from_env({"POSTGRES_MIN_CONNECTIONS": "5", "POSTGRES_MAX_CONNECTIONS": "2"})


def test_a_bad_setting_fails_database_from_env_at_start() -> None:
    with pytest.raises(ValueError, match="POSTGRES_MAX_CONNECTIONS"):
        Database.from_env({"DATABASE_URL": "host=127.0.0.1", "POSTGRES_MAX_CONNECTIONS": "abc"})


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("YES", True), ("on", True), ("false", False), ("0", False)]
)
def test_booleans(text: str, expected: bool) -> None:
    assert Settings.from_env({"POSTGRES_PGBOUNCER": text}).pgbouncer is expected


def test_conninfo_from_env() -> None:
    assert conninfo_from_env({}) is None
    assert conninfo_from_env({"POSTGRES_MAX_CONNECTIONS": "5"}) is None  # pool settings only
    assert conninfo_from_env({"DATABASE_URL": "postgresql://u@h/db"}) == "postgresql://u@h/db"
    built = conninfo_from_env(
        {"POSTGRES_HOST": "db.local", "POSTGRES_DB": "salon", "POSTGRES_PASSWORD": "s3cret"}
    )
    assert built is not None
    assert "host=db.local" in built and "dbname=salon" in built and "port=5432" in built
    with pytest.raises(ValueError, match="POSTGRES_PORT"):
        conninfo_from_env({"POSTGRES_HOST": "h", "POSTGRES_PORT": "http"})


MULTI_HOST = {"target_session_attrs": "read-write"}


@pytest.mark.parametrize(
    ("url", "hosts", "ports"),
    [
        ("postgresql://u:s3cret@10.0.0.1:5432,10.0.0.2:5433/db", "10.0.0.1,10.0.0.2", "5432,5433"),
        (
            "postgresql://u@10.0.0.1,10.0.0.2/db",
            "10.0.0.1,10.0.0.2",
            ",",
        ),  # each host on the default port
        (
            "host=10.0.0.1,10.0.0.2 port=5432,5433 dbname=db user=u password=s3cret",
            "10.0.0.1,10.0.0.2",
            "5432,5433",
        ),
        (
            "host=10.0.0.1,10.0.0.2,10.0.0.3 port=6432 dbname=db",
            "10.0.0.1,10.0.0.2,10.0.0.3",
            "6432",
        ),  # one port for all
    ],
)
def test_several_hosts_in_database_url_ask_for_the_primary(
    url: str, hosts: str, ports: str
) -> None:
    built = conninfo_from_env({"DATABASE_URL": url})
    assert built is not None
    params = conninfo_to_dict(built)
    assert (params["host"], params["port"]) == (hosts, ports)
    assert params["target_session_attrs"] == "read-write"
    # psycopg makes one connection attempt per host, in the order given.
    attempts = conninfo_attempts(params)
    assert [a["host"] for a in attempts] == hosts.split(",")


def test_a_target_session_attrs_of_its_own_is_kept() -> None:
    url = "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=any"
    assert conninfo_from_env({"DATABASE_URL": url}) == url
    kv = "host=h1,h2 target_session_attrs=prefer-standby"
    assert conninfo_from_env({"DATABASE_URL": kv}) == kv
    # libpq's own variable counts as set too.
    env = {"DATABASE_URL": "host=h1,h2", "PGTARGETSESSIONATTRS": "any"}
    assert conninfo_from_env(env) == "host=h1,h2"
    env = {"POSTGRES_HOST": "h1,h2", "PGTARGETSESSIONATTRS": "any"}
    assert "target_session_attrs" not in conninfo_to_dict(conninfo_from_env(env) or "")


def test_one_host_is_left_as_it_is() -> None:
    for url in ("postgresql://u@h/db", "host=h port=5432 dbname=db"):
        assert conninfo_from_env({"DATABASE_URL": url}) == url
    built = conninfo_from_env({"POSTGRES_HOST": "h"}) or ""
    assert "target_session_attrs" not in conninfo_to_dict(built)


def test_several_postgres_hosts_and_ports() -> None:
    built = conninfo_from_env(
        {"POSTGRES_HOST": "a, b", "POSTGRES_PORT": "5432,5433", "POSTGRES_PASSWORD": "s3cret"}
    )
    params = conninfo_to_dict(built or "")
    assert (params["host"], params["port"]) == ("a,b", "5432,5433")
    assert params["target_session_attrs"] == "read-write"
    assert params["password"] == "s3cret"
    one_port = conninfo_to_dict(conninfo_from_env({"POSTGRES_HOST": "10.0.0.1,10.0.0.2"}) or "")
    assert (one_port["host"], one_port["port"]) == ("10.0.0.1,10.0.0.2", "5432")
    assert len(conninfo_attempts(one_port)) == 2


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"POSTGRES_HOST": "a,b", "POSTGRES_PORT": "1,2,3"}, "POSTGRES_PORT"),
        ({"POSTGRES_HOST": "a,b,c", "POSTGRES_PORT": "5432,5433"}, "POSTGRES_PORT"),
        ({"POSTGRES_HOST": "a,b", "POSTGRES_PORT": "5432,x"}, "POSTGRES_PORT"),
        ({"POSTGRES_HOST": "a,,b"}, "POSTGRES_HOST"),
        ({"DATABASE_URL": "postgresql://u:s3cret@a:1,b:2/db?port=1,2,3"}, "DATABASE_URL"),
        ({"DATABASE_URL": "host=a,b,c port=1,2 password=s3cret"}, "DATABASE_URL"),
        ({"DATABASE_URL": "host=a,b hostaddr=1.2.3.4 password=s3cret"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u:s3cret@a:1,b:http/db"}, "DATABASE_URL"),
        # Not parseable: libpq's own message would quote the text, password included.
        ({"DATABASE_URL": "postgresql://u:s3 cret@a/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "host=a password=s3cret port"}, "DATABASE_URL"),
    ],
)
def test_bad_hosts_and_ports_name_the_variable_not_the_password(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ValueError, match=variable) as info:
        conninfo_from_env({**env, "POSTGRES_PASSWORD": "s3cret"})
    assert "s3cret" not in str(info.value) and "s3 cret" not in str(info.value)
    # No chained libpq error carries the text along (a traceback would show it).
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_database_on_several_hosts_connects_to_the_one_that_answers(pg_url: str) -> None:
    """The first host refuses the connection; the pool finds the second by itself."""
    params = conninfo_to_dict(pg_url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, not listening: connection refused
        host = params.get("host") or "127.0.0.1"
        port = params.get("port") or "5432"
        params.update(host=f"127.0.0.1,{host}", port=f"{closed},{port}")
        url = make_conninfo(**params)
        with Database.from_env({"DATABASE_URL": url, "SERVICE_NAME": "multi-host"}) as db:
            assert conninfo_to_dict(db.pool.conninfo)["target_session_attrs"] == "read-write"
            with db.connection() as conn:
                row = conn.execute("SELECT current_setting('application_name')").fetchone()
                assert row == ("multi-host",)
                assert conn.info.port == int(port)


def test_database_from_env_reads_database_url(pg_url: str) -> None:
    with Database.from_env({"DATABASE_URL": pg_url, "SERVICE_NAME": "from-env"}) as db:
        assert db.settings.service_name == "from-env"
        with db.connection() as conn:
            row = conn.execute("SELECT current_setting('application_name')").fetchone()
        assert row == ("from-env",)


def test_default_data_dir() -> None:
    assert default_data_dir({"DATALAYER_DATA_DIR": "/srv/pg"}) == Path("/srv/pg")
    assert default_data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/datalayer/pgdata")


@pytest.mark.slow
def test_embedded_server_when_nothing_is_configured() -> None:
    # Not tmp_path: run as root, the server runs as its own user and needs to reach
    # the folder, and pytest's base temp is private to root.
    base = Path(tempfile.mkdtemp(prefix="datalayer-embedded-"))
    base.chmod(0o755)
    folder = base / "pgdata"
    env = {"DATALAYER_DATA_DIR": str(folder)}
    try:
        with capture_logs() as logs, Database.from_env(env) as db:
            migrate(db)
            CompaniesRepository(db).upsert({"company_id": 1, "title": "kept"})
        started = [line for line in logs if line["event"] == "embedded_postgres_started"]
        assert started[0]["data_dir"] == str(folder.resolve())
        assert started[0]["reused"] is False
        stop_embedded(folder)
        # The next start finds the same folder and the same data.
        with capture_logs() as logs, Database.from_env(env) as db:
            found = CompaniesRepository(db).find_one({"company_id": 1})
        assert found is not None and found.title == "kept"
        assert [line["reused"] for line in logs if "reused" in line] == [True]
    finally:
        stop_embedded(folder)
        shutil.rmtree(base, ignore_errors=True)


def test_database_from_env_reads_postgres_variables(pg_url: str) -> None:
    params = conninfo_to_dict(pg_url)
    env = {
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_DB": str(params["dbname"]),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_MAX_CONNECTIONS": "2",
    }
    if params.get("password"):
        env["POSTGRES_PASSWORD"] = str(params["password"])
    with Database.from_env(env) as db, db.connection() as conn:
        assert db.pool.max_size == 2
        assert conn.execute("SELECT current_database()").fetchone() == (params["dbname"],)


def test_a_multi_host_conninfo_given_directly_targets_the_primary(pg_url: str) -> None:
    """Database(conninfo) applies the same read-write default as from_env()."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from datalayer import AsyncDatabase, Database

    params = conninfo_to_dict(pg_url)
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    both = make_conninfo(pg_url, host=f"{host},{host}", port=f"{port},{port}")
    for cls in (Database, AsyncDatabase):
        db = cls(both, Settings())
        try:
            assert conninfo_to_dict(db.pool.conninfo)["target_session_attrs"] == "read-write"
        finally:
            if isinstance(db, Database):
                db.close()
    single = Database(pg_url, Settings())
    try:
        assert "target_session_attrs" not in conninfo_to_dict(single.pool.conninfo)
    finally:
        single.close()
