"""A real PgBouncer (transaction pooling) in front of the suite's database.

The session fixture ``pgbouncer`` writes a config file and a userlist into a
temporary folder, starts the Debian ``pgbouncer`` binary on a free loopback
port and stops it at the end. It skips only when the binary is absent
(``.ci/run`` installs it, so CI never skips); a PgBouncer that cannot reach the
test server (over TCP or the embedded server's unix socket) fails, with its log.

The startup parameter ``options`` is deliberately *not* in
``ignore_startup_parameters``: PgBouncer then refuses a client that sends
``options=-c statement_timeout=...``, so a Database in PgBouncer mode that
still relied on a startup option would fail here instead of silently losing
its timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Server connections PgBouncer may open per (database, user): fewer than the
# 7 services x 3 connections the load test runs, so clients really share them.
SERVER_POOL_SIZE = 8
MAX_CLIENT_CONN = 200


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: where to reach it and how it was configured."""

    conninfo: str  # the suite's database, through PgBouncer
    admin_conninfo: str  # PgBouncer's admin console (SHOW POOLS, SHOW STATS)
    port: int
    pool_size: int
    workdir: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.workdir / "pgbouncer.log").read_text(errors="replace")


def _find_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote_userlist(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _write_config(workdir: Path, server: dict[str, Any], port: int) -> Path:
    user = str(server.get("user") or os.environ.get("PGUSER") or "postgres")
    password = str(server.get("password") or "")
    backend = {
        "host": server.get("host") or "127.0.0.1",
        "port": server.get("port") or "5432",
    }
    backend_line = " ".join(f"{key}={value}" for key, value in backend.items())
    userlist = workdir / "userlist.txt"
    userlist.write_text(f"{_quote_userlist(user)} {_quote_userlist(password)}\n")
    lines = [
        "[databases]",
        # Any database name goes to the same server: the suite's own database
        # and `postgres` (for budget reads) alike.
        f"* = {backend_line}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {userlist}",
        f"admin_users = {user}",
        "pool_mode = transaction",
        f"default_pool_size = {SERVER_POOL_SIZE}",
        "min_pool_size = 0",
        "reserve_pool_size = 0",
        f"max_client_conn = {MAX_CLIENT_CONN}",
        "ignore_startup_parameters = extra_float_digits",
        "server_reset_query =",
        "log_connections = 0",
        "log_disconnections = 0",
    ]
    run_as = _unprivileged_user(str(backend["host"]))
    if run_as is not None:
        lines.append(f"user = {run_as}")
    ini = workdir / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    for path in (workdir, userlist, ini):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return ini


def _unprivileged_user(server_host: str) -> str | None:
    """The user PgBouncer drops to when started as root (it refuses to run as root).

    ``postgres`` for a TCP server; for a unix socket, the owner of the socket's
    folder (the embedded server keeps it private to its own user).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    if server_host.startswith("/"):
        import pwd

        with contextlib.suppress(OSError, KeyError):
            owner = pwd.getpwuid(Path(server_host).stat().st_uid).pw_name
            if owner != "root":
                return owner
    return "postgres"


def _wait_until_ready(
    process: subprocess.Popen[bytes], conninfo: str, deadline_s: float
) -> str | None:
    """None once a query through PgBouncer works, else the last error."""
    last_error = "PgBouncer did not start"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"PgBouncer exited with code {process.returncode}"
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return None
        except psycopg.Error as exc:
            last_error = str(exc)
            time.sleep(0.1)
    return last_error


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def pgbouncer(pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction-pooling mode in front of ``pg_url``'s database."""
    binary = _find_binary()
    if binary is None:
        pytest.skip("pgbouncer binary not found (Debian: apt-get install pgbouncer)")
    server = conninfo_to_dict(pg_url)
    host = str(server.get("host") or "")
    workdir = Path(tempfile.mkdtemp(prefix="datalayer-pgbouncer-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        error = "not started"
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = _free_port()
            ini = _write_config(workdir, server, port)
            through = dict(server, host="127.0.0.1", port=str(port))
            through.pop("password", None)
            conninfo = make_conninfo(**through)
            with (workdir / "pgbouncer.log").open("ab") as log:
                process = subprocess.Popen(
                    [binary, str(ini)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
                )
            failure = _wait_until_ready(process, conninfo, deadline_s=15)
            if failure is None:
                admin = dict(through, dbname="pgbouncer")
                yield PgBouncer(
                    conninfo=conninfo,
                    admin_conninfo=make_conninfo(**admin),
                    port=port,
                    pool_size=SERVER_POOL_SIZE,
                    workdir=workdir,
                    process=process,
                )
                return
            error = failure
            running = process.poll() is None
            _stop(process)
            if running:
                break  # up but unable to reach the server: another port would not help
        # Only an absent binary skips (issue 7): a server PgBouncer cannot reach, over
        # TCP or the embedded server's unix socket, is a failure to look at.
        log_text = (workdir / "pgbouncer.log").read_text(errors="replace")
        pytest.fail(
            f"PgBouncer did not come up in front of {host or 'localhost'}: {error}\n{log_text}"
        )
    finally:
        if process is not None:
            _stop(process)
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)


# --- the suite's fixtures, through PgBouncer ------------------------------------------
#
# Tests collected under tests/pgbouncer/ (the re-run modules, see _rerun.py) get
# these instead of tests/conftest.py's: the same names, so the repository,
# transaction and facade tests run unchanged against a Database in PgBouncer mode.


@pytest.fixture(scope="session")
def direct_db(db: Any, pg_url: str) -> Iterator[Any]:
    """A Database straight to the server (not through PgBouncer), for comparisons."""
    from datalayer import Database, Settings

    database = Database(pg_url, Settings(max_connections=2, service_name="datalayer-direct"))
    yield database
    database.close()


@pytest.fixture(scope="session")
def db(db: Any, pgbouncer: PgBouncer) -> Iterator[Any]:
    """A Database in PgBouncer mode (POSTGRES_PGBOUNCER=true) behind the suite's PgBouncer."""
    from datalayer import Database

    settings = dataclasses.replace(db.settings, pgbouncer=True, service_name="datalayer-pgbouncer")
    database = Database(pgbouncer.conninfo, settings)
    yield database
    database.close()


@pytest.fixture(scope="session")
def async_db(db: Any, pgbouncer: PgBouncer, flavour_loop: Any) -> Iterator[Any]:
    """An ``AsyncDatabase`` in PgBouncer mode behind the suite's PgBouncer (async flavour)."""
    from _flavours import factory

    from datalayer import AsyncDatabase

    database = factory(AsyncDatabase, flavour_loop)(pgbouncer.conninfo, db.settings)
    yield database
    database.close()


@pytest.fixture
def clean_db(clean_db: Any) -> Any:
    """The PgBouncer-mode ``db`` (or ``async_db``), every table emptied first (by the
    original ``clean_db``, which picks the flavour's database)."""
    return clean_db


_SUITE_FIXTURES = {"db", "clean_db", "pg_url", "pg_server_url"}


def _bypasses_pgbouncer(item: pytest.Item, here: str, suite: str) -> bool:
    """True when the test, or a fixture of its own, connects with ``pg_url`` directly.

    ``here`` and ``suite`` are the node ids of this folder and of tests/.
    """
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    if "pg_url" in info.argnames:
        return True
    for name, defs in info.name2fixturedefs.items():
        for fixturedef in defs:
            if "pg_url" not in fixturedef.argnames:
                continue
            if fixturedef.baseid == here:
                continue  # this folder's own fixtures: PgBouncer and the overrides
            if fixturedef.baseid == suite and name in _SUITE_FIXTURES:
                continue
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from ._rerun import MARKER

    folder = Path(__file__).resolve().parent
    try:
        here = folder.relative_to(config.rootpath).as_posix()
        suite = folder.parent.relative_to(config.rootpath).as_posix()
    except ValueError:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        module = getattr(item, "module", None)
        rerun = module is not None and hasattr(module, MARKER)
        bypass = rerun and _bypasses_pgbouncer(item, here, suite)
        (dropped if bypass else keep).append(item)
    if dropped:
        # A re-run module left with nothing would pass without running anything.
        emptied = {i.module.__name__ for i in dropped} - {
            i.module.__name__ for i in keep if getattr(i, "module", None) is not None
        }
        if emptied:
            raise pytest.UsageError(f"every test of {sorted(emptied)} bypasses PgBouncer")
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
