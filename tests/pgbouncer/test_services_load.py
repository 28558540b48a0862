"""Seven services (processes) x 3 connections through PgBouncer with 8 server connections.

Each service is a separate Python process with its own pool of 3 (min 3, so
21 client connections are really open at once) in PgBouncer mode, running a
bounded mixed load: upserts, reads, transactions, retried transactions with
bulk upserts, rolled-back savepoints. They must all finish without a single
error, and what they say they wrote must be exactly what is in the database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .conftest import PgBouncer

SERVICES = 7
POOL_SIZE = 3
ITERATIONS_PER_THREAD = 40  # x 3 threads x 7 services = 840 calls
WORKER = Path(__file__).with_name("load_worker.py")
COMPANY_BASE = 910_000
ROLLED_BACK_BASE = 1_000_000


@pytest.fixture
def load_companies(db: Any, pg_url: str) -> Iterator[list[int]]:
    ids = [COMPANY_BASE + i for i in range(SERVICES)]
    yield ids
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("bookings", "clients", "companies"):
            conn.execute(f"DELETE FROM {table} WHERE company_id = ANY(%s)", (ids,))


class _ServerConnectionSampler(threading.Thread):
    """Counts, directly on the server, the connections PgBouncer opened for the services."""

    def __init__(self, pg_url: str) -> None:
        super().__init__(daemon=True)
        self.pg_url = pg_url
        self.peak = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            while not self.done.wait(0.02):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE 'load-svc-%'"
                ).fetchone()
                self.peak = max(self.peak, row[0] if row else 0)
                self.samples += 1


def _run_services(pgbouncer: PgBouncer, tmp_path: Path) -> list[dict[str, Any]]:
    procs = []
    for index in range(SERVICES):
        result_file = tmp_path / f"service-{index}.json"
        log_file = (tmp_path / f"service-{index}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                pgbouncer.conninfo,
                str(index),
                str(ITERATIONS_PER_THREAD),
                str(result_file),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        procs.append((proc, result_file, log_file))
    results = []
    for proc, result_file, log_file in procs:
        proc.wait()
        log_file.close()
        assert result_file.exists(), (
            f"service exited {proc.returncode} without a result:\n"
            + Path(log_file.name).read_text(errors="replace")[-4000:]
        )
        result = json.loads(result_file.read_text())
        result["returncode"] = proc.returncode
        results.append(result)
    return results


def test_seven_services_share_eight_server_connections(
    pgbouncer: PgBouncer, pg_url: str, load_companies: list[int], tmp_path: Path
) -> None:
    assert pgbouncer.pool_size < SERVICES * POOL_SIZE

    sampler = _ServerConnectionSampler(pg_url)
    sampler.start()
    try:
        results = _run_services(pgbouncer, tmp_path)
    finally:
        sampler.done.set()
        sampler.join()

    errors = [(r["service"], e) for r in results for e in r["errors"]]
    assert errors == []
    assert [r["returncode"] for r in results] == [0] * SERVICES
    assert sum(r["calls"] for r in results) == SERVICES * 3 * ITERATIONS_PER_THREAD
    # Every service really held its 3 client connections.
    assert [r["pool_size"] for r in results] == [POOL_SIZE] * SERVICES

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for r in results:
            company = r["company_id"]
            stored_clients = {
                row[0]
                for row in conn.execute(
                    "SELECT yclients_id FROM clients WHERE company_id = %s", (company,)
                )
            }
            stored_bookings = {
                row[0]
                for row in conn.execute(
                    "SELECT yclients_record_id FROM bookings WHERE company_id = %s", (company,)
                )
            }
            assert stored_clients == set(r["clients_written"])
            assert stored_bookings == set(r["bookings_written"])
            assert not any(key >= ROLLED_BACK_BASE for key in stored_clients)

    # The server never saw more than PgBouncer's pool of connections for them.
    assert 0 < sampler.peak <= pgbouncer.pool_size, (sampler.peak, sampler.samples)
    # And PgBouncer itself agrees.
    with psycopg.connect(pgbouncer.admin_conninfo, autocommit=True) as admin:
        cursor = admin.execute("SHOW POOLS")
        columns = [c.name for c in cursor.description or ()]
        pools = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    ours = [pool for pool in pools if pool["database"] == dbname]
    assert ours, f"no PgBouncer pool for {dbname}: {pools}"
    for pool in ours:
        servers = sum(
            int(pool[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        )
        assert servers <= pgbouncer.pool_size
