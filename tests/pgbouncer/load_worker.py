"""One simulated service: a pool of 3 running a bounded mixed load through PgBouncer.

Run as a separate process by ``test_services_load.py``::

    python load_worker.py CONNINFO SERVICE_INDEX ITERATIONS RESULT_FILE

Three threads share the service's pool; each runs ``ITERATIONS`` calls cycling
through upserts, reads, a transaction, a retried transaction with a bulk
upsert, and a transaction whose nested savepoint is rolled back. Every error
is recorded; the result (what was written, errors, pool figures) goes to
``RESULT_FILE`` as JSON, so stdout stays free for log lines.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from datalayer._config import Settings
from datalayer._database import Database
from datalayer.errors import ValidationError
from datalayer.repositories import BookingsRepository, ClientsRepository, CompaniesRepository

THREADS = 3
COMPANY_BASE = 910_000
ROLLED_BACK_BASE = 1_000_000  # client ids written only inside rolled-back savepoints


class _Rollback(ValidationError):
    """Raised on purpose to roll a savepoint back (an expected outcome: no error report)."""


def company_id_of(service_index: int) -> int:
    return COMPANY_BASE + service_index


def _client(company_id: int, service_index: int, key: int) -> dict[str, Any]:
    return {
        "yclients_id": key,
        "company_id": company_id,
        "name": f"Load client {service_index}-{key}",
        "phone": f"79{service_index:02d}{key:07d}",
        "visit_count": key % 7,
    }


def _booking(company_id: int, record_id: int, client_id: int) -> dict[str, Any]:
    return {
        "yclients_record_id": record_id,
        "company_id": company_id,
        "client_yclients_id": client_id,
        "datetime": datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=record_id),
        "status": "active",
        "service_ids": [1, 2],
    }


def run(conninfo: str, service_index: int, iterations: int) -> dict[str, Any]:
    settings = Settings(
        max_connections=3,
        min_connections=3,
        pgbouncer=True,
        service_name=f"load-svc-{service_index}",
        pool_timeout=60,
        statement_timeout=30,
    )
    company_id = company_id_of(service_index)
    lock = threading.Lock()
    clients_written: set[int] = set()
    bookings_written: set[int] = set()
    errors: list[str] = []
    calls = 0

    with Database(conninfo, settings) as db:
        companies = CompaniesRepository(db)
        clients = ClientsRepository(db)
        bookings = BookingsRepository(db)
        companies.upsert({"company_id": company_id, "title": f"Load salon {service_index}"})

        def one_call(thread: int, i: int) -> tuple[set[int], set[int]]:
            key = thread * iterations + i + 1
            kind = i % 5
            if kind == 0:
                clients.upsert(_client(company_id, service_index, key))
                return {key}, set()
            if kind == 1:
                clients.find_many({"company_id": company_id}, order_by="yclients_id", limit=10)
                clients.count({"company_id": company_id, "visit_count": {"gte": 3}})
                companies.find_one({"company_id": company_id})
                return set(), set()
            if kind == 2:
                with db.transaction():
                    clients.upsert(_client(company_id, service_index, key))
                    bookings.upsert(_booking(company_id, key * 10, key))
                    found = clients.find_one({"company_id": company_id, "yclients_id": key})
                    if found is None:
                        raise AssertionError(f"client {key} not visible in its own transaction")
                return {key}, {key * 10}
            if kind == 3:
                rows = [_booking(company_id, key * 10 + j, key) for j in range(1, 6)]
                db.run_in_transaction(lambda: bookings.bulk_upsert(rows))
                return set(), {key * 10 + j for j in range(1, 6)}
            with db.transaction():
                clients.upsert(_client(company_id, service_index, key))
                try:
                    with db.transaction():
                        clients.upsert(
                            _client(company_id, service_index, ROLLED_BACK_BASE + key)
                            | {"phone": f"78{service_index:02d}{key:07d}"}
                        )
                        raise _Rollback("savepoint rolled back on purpose")
                except _Rollback:
                    pass
            return {key}, set()

        def work(thread: int) -> None:
            nonlocal calls
            for i in range(iterations):
                try:
                    new_clients, new_bookings = one_call(thread, i)
                except Exception as exc:
                    with lock:
                        errors.append(f"thread {thread} call {i}: {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    calls += 1
                    clients_written.update(new_clients)
                    bookings_written.update(new_bookings)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = db.stats()

    return {
        "service": service_index,
        "company_id": company_id,
        "calls": calls,
        "errors": errors,
        "clients_written": sorted(clients_written),
        "bookings_written": sorted(bookings_written),
        "pool_size": stats["pool_size"],
        "pool_max": stats["pool_max"],
    }


def main(argv: list[str]) -> int:
    conninfo, service_index, iterations, result_file = argv
    try:
        result = run(conninfo, int(service_index), int(iterations))
    except Exception as exc:
        result = {"service": int(service_index), "errors": [f"{type(exc).__name__}: {exc}"]}
    Path(result_file).write_text(json.dumps(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
