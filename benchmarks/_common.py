"""What the benchmarks share: the server to use and a scratch database on it.

Run a benchmark as ``python benchmarks/<name>.py``: this directory is then first on
``sys.path`` and ``from _common import ...`` finds this module.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


def server_url() -> str:
    """``TEST_DATABASE_URL``, ``DATABASE_URL``, else 127.0.0.1:5432 as ``postgres``."""
    return (
        os.environ.get("TEST_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
    )


@contextmanager
def scratch_database(prefix: str, server: str | None = None) -> Iterator[str]:
    """Conninfo of a new database on ``server`` (default ``server_url()``), dropped after."""
    server = server or server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
