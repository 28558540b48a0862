"""One facade read against the same query on a raw pooled psycopg connection.

The facade side calls ``DataLayer.get_client_by_phone("8 (968) 648-44-88", 1)``:
phone normalisation, id checks, the errorkit boundary, the repository's query
building and the Database's connection checkout. The raw side checks a
connection out of a ``psycopg_pool.ConnectionPool`` of autocommit connections
and executes the text of the very statement the repository builds for that
call (rendered once, as a hand-written query would be), with the same
parameters, fetching the row as a tuple, and again as a ``Client`` through
``class_row`` (the typed result the facade returns).

Usage::

    python benchmarks/facade_vs_raw.py [--calls 2000] [--repeats 7]

The server is ``TEST_DATABASE_URL``, ``DATABASE_URL`` or 127.0.0.1:5432 (user
postgres). The script creates its own database, seeds it, and drops it at the
end. Prints the per-call wall time of each side over the repeats (sides
alternate, so none gets a warmer cache), the client-side CPU time (steadier on
a busy machine than wall time), and the ratios facade / raw (target: within
1.2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg
from _common import scratch_database
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from datalayer import Database, DataLayer, Settings, migrate
from datalayer.models import Client
from datalayer.repositories import ClientsRepository
from datalayer.repositories._sql import build_select

COMPANY_ID = 1
TYPED_PHONE = "8 (968) 648-44-88"
STORED_PHONE = "79686484488"
CLIENTS = 1_000


def measure(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Wall time and this process's CPU time per call, in microseconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        (time.process_time() - cpu) / calls * 1e6,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per repeat and side")
    parser.add_argument("--repeats", type=int, default=15, help="alternating rounds per side")
    args = parser.parse_args(argv)

    with scratch_database("facade_bench") as url:
        settings = Settings(service_name="facade-bench")
        with Database(url, settings) as db:
            migrate(db)
            facade = DataLayer(db)
            facade.upsert_clients(
                {
                    "yclients_id": i,
                    "company_id": COMPANY_ID,
                    "name": f"client {i}",
                    "phone": f"7968{i:07d}" if i > 1 else STORED_PHONE,
                }
                for i in range(1, CLIENTS + 1)
            )
            # The statement the repository builds for this call; the raw side sends its text.
            query = build_select(
                ClientsRepository.table,
                {"phone": STORED_PHONE, "company_id": COMPANY_ID},
                order_by="updated_at",
                descending=True,
                limit=1,
            )
            raw_pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                url, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
            )
            raw_pool.wait()

            with raw_pool.connection() as conn:
                statement = query.statement.as_string(conn)  # what a hand-written query is
            params = tuple(query.params)

            typed = class_row(Client)

            def raw() -> Any:
                with raw_pool.connection() as conn:
                    return conn.execute(statement, params).fetchone()

            def raw_typed() -> Any:
                with raw_pool.connection() as conn:
                    return conn.cursor(row_factory=typed).execute(statement, params).fetchone()

            def database_checkout() -> Any:
                with db.connection() as conn:
                    return conn.cursor(row_factory=typed).execute(statement, params).fetchone()

            repository = ClientsRepository(db)

            def through_repository() -> Any:
                return repository.find_by_phone(STORED_PHONE, COMPANY_ID)

            def through_facade() -> Any:
                return facade.get_client_by_phone(TYPED_PHONE, COMPANY_ID)

            found = through_facade()
            assert found is not None and found.yclients_id == 1, found
            assert raw_typed() == found
            # The layers in between show where the facade's time goes.
            sides = {
                "raw, tuple rows": raw,
                "raw, Client rows": raw_typed,
                "+ Database pool": database_checkout,
                "+ repository": through_repository,
                "facade": through_facade,
            }

            for fn in sides.values():  # warm up: prepared statements, caches
                measure(fn, min(args.calls, 500))
            wall: dict[str, list[float]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.repeats):
                for name, fn in sides.items():
                    w, c = measure(fn, args.calls)
                    wall[name].append(w)
                    cpu[name].append(c)
            raw_pool.close()

    print(f"get_client_by_phone: {args.repeats} repeats x {args.calls} calls per side")
    for name in sides:
        print(
            f"  {name:17s}: wall median {statistics.median(wall[name]):7.1f} us/call"
            f" (best {min(wall[name]):6.1f}), client CPU median"
            f" {statistics.median(cpu[name]):6.1f} us/call"
        )
    for base in ("raw, tuple rows", "raw, Client rows"):
        # Each repeat runs every side back to back; the median of the per-repeat ratios
        # is robust to the machine's load drifting between repeats.
        ratios = [f / r for f, r in zip(wall["facade"], wall[base], strict=True)]
        print(
            f"  facade / {base:16s}: {statistics.median(ratios):.2f}x wall"
            f" (median of repeats), {min(wall['facade']) / min(wall[base]):.2f}x best to best,"
            f" {statistics.median(cpu['facade']) / statistics.median(cpu[base]):.2f}x client CPU"
        )
    print("  target: facade within 1.20x of raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
