"""What the benchmarks share: the server to use and a scratch database on it.

Run a benchmark as ``python benchmarks/<name>.py``: this directory is then first on
``sys.path`` and ``from _common import ...`` finds this module.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
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


_TICKS = os.sysconf("SC_CLK_TCK")


class CpuClock:
    """CPU seconds of this process plus the server backends of one application name.

    Wall time on a shared machine swings with everyone else's load; the CPU both sides
    spend is steadier. The backends are read from /proc, so the server must run on
    this machine (else only wall time is printed).
    """

    def __init__(self, url: str, application_name: str) -> None:
        self._admin = psycopg.connect(url, autocommit=True)
        self._name = application_name
        self.available = self._backends_cpu() is not None

    def _backends_cpu(self) -> float | None:
        pids = [
            row[0]
            for row in self._admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self._name,)
            )
        ]
        total = 0.0
        try:
            for pid in pids:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _TICKS
        except OSError:
            return None
        return total

    def measure(self, fn: Callable[[], object]) -> tuple[float, float]:
        """Wall seconds and CPU seconds (client + backends) of one call of ``fn``."""
        server = self._backends_cpu() or 0.0
        client, wall = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - wall
        cpu = time.process_time() - client + (self._backends_cpu() or 0.0) - server
        return wall, cpu

    def close(self) -> None:
        self._admin.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f}x [{min(values):.2f}-{max(values):.2f}]"
