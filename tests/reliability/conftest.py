"""Fixtures for the reliability suite: a throwaway server, unreachable Sentry.

The fault tests stop, start and kill the backends of a PostgreSQL cluster
this suite creates for itself (``initdb`` in a temporary directory, a free
loopback port), never the machine's shared server. Figures measured by the
tests (restart time, flush time, ...) are printed in the terminal summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ._pgcluster import ThrowawayServer, find_bindir
from ._sentry import BlackHole, closed_port_dsn

FIGURES: dict[str, str] = {}


def record_figure(name: str, value: str) -> None:
    """Keep a measured figure for the terminal summary (and docs/reliability.md)."""
    FIGURES[name] = value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayServer]:
    """A private PostgreSQL cluster that tests may stop, start and abuse."""
    if find_bindir() is None:
        pytest.skip("no initdb available for a throwaway cluster")
    server = ThrowawayServer.create()
    try:
        yield server
    finally:
        if server.restart_seconds:
            times = ", ".join(f"{t * 1000:.0f}" for t in server.restart_seconds)
            record_figure("server restart (stop -m fast + start -w), ms", times)
        server.destroy()


@pytest.fixture
def cluster(pg_cluster: ThrowawayServer) -> Iterator[ThrowawayServer]:
    """The throwaway cluster, guaranteed running again after the test."""
    if not pg_cluster.is_running():
        pg_cluster.start()
    yield pg_cluster
    if not pg_cluster.is_running():
        pg_cluster.start()


@pytest.fixture(scope="session")
def cluster_url(pg_cluster: ThrowawayServer) -> str:
    """Conninfo of a migrated database on the throwaway cluster."""
    from datalayer import Database, migrate

    name = f"reliability_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_cluster.url_for(name)
    with Database(url) as db:
        migrate(db)
    return url


def admin_connect(url: str) -> psycopg.Connection[Any]:
    """A plain autocommit connection outside any pool (for killing and checking)."""
    return psycopg.connect(url, autocommit=True)


def truncate_domain(url: str) -> None:
    with admin_connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT LIKE '%migration%'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )


@pytest.fixture
def clean_cluster_url(cluster: ThrowawayServer, cluster_url: str) -> str:
    """``cluster_url`` with every domain table emptied, the server running."""
    truncate_domain(cluster_url)
    return cluster_url


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A loopback TCP server that accepts and never answers (60 s at most)."""
    with BlackHole(lifetime=60.0) as hole:
        yield hole


@pytest.fixture
def closed_dsn() -> str:
    """A Sentry DSN pointing at a loopback port nothing listens on."""
    return closed_port_dsn()
