"""The facade's bulk write against the same COPY + merge done raw, and validation alone.

The facade side calls ``DataLayer.upsert_clients(payloads)`` with 100,000 mappings
as a service passes them (ids, a name, a phone with its ``+``, tags, preferences):
input validation (unknown keys, required keys, ids, phone normalisation, the
model's defaults), the errorkit boundary, and ``ClientsRepository.bulk_upsert``
(COPY into a temporary table, one ``INSERT ... ON CONFLICT``). The raw side takes
the same rows already normalised, as tuples, and runs the same COPY and merge on a
pooled connection. Each round writes fresh keys (inserts), then the same keys again
(updates), both sides on their own company ids, in alternating order.

Usage::

    python benchmarks/facade_bulk.py [--rows 100000] [--rounds 3]

The server is ``TEST_DATABASE_URL``, ``DATABASE_URL`` or 127.0.0.1:5432 (user
postgres); the script creates its own database and drops it at the end. Prints,
as median [min-max] over the rounds: ``validate_payloads`` alone in microseconds
per row (target: at most 3), and the facade's wall and CPU time (this process and
its server backends) over raw (target: within 1.25x). Both are measured again with
Python's cyclic garbage collector paused, which shows the collector's share: the
batch allocates 100k+ containers, and each full collection walks every live one.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import CpuClock, scratch_database, spread
from psycopg import sql

from datalayer import Database, DataLayer, Settings, migrate
from datalayer.models import Client
from datalayer.repositories import ClientsRepository, _sql
from datalayer.validation import validate_payloads

TYPES = ["bigint", "bigint", "text", "text", "text", "date", "integer", "text[]", "jsonb"]


def payloads(rows: int, company_id: int, label: str) -> list[dict[str, Any]]:
    return [
        {
            "yclients_id": i,
            "company_id": company_id,
            "name": f"{label} {i}",
            "phone": f"+7900{i:07d}",
            "visit_count": i % 50,
            "tags": ["bench"],
            "preferences": {"i": i},
        }
        for i in range(1, rows + 1)
    ]


def normalised(batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the raw side sends: the stored values, in column order, no checks."""
    return [
        (p["yclients_id"], p["company_id"], p["name"], p["phone"][1:], None, None,
         p["visit_count"], p["tags"], p["preferences"])
        for p in batch
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per batch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    args = parser.parse_args(argv)

    table = ClientsRepository.table
    columns = table.writable
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    create = sql.SQL(
        "CREATE TEMP TABLE raw_bulk ON COMMIT DROP AS SELECT {} FROM clients WITH NO DATA"
    ).format(column_list)
    copy_sql = sql.SQL("COPY raw_bulk ({}) FROM STDIN").format(column_list)
    merge = _sql.build_bulk_upsert(table, tuple(columns)).merge

    # Validation alone: no database, the same payloads every round; also with Python's
    # cyclic garbage collector paused, to tell its share (it walks every live container
    # of the process, the 100k payloads included, as the batch allocates).
    sample = payloads(args.rows, 1, "validation")
    models = [Client(**p) for p in sample]
    validation: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for kind, batch in (("mappings", sample), ("Client models", models)):
            for paused in (False, True):
                with collector_paused(paused):
                    started = time.perf_counter()
                    validate_payloads(
                        batch, Client, keys=table.key, normalizers=_client_normalizers()
                    )
                    seconds = time.perf_counter() - started
                label = f"{kind}, collector paused" if paused else kind
                validation.setdefault(label, []).append(seconds / args.rows * 1e6)

    with scratch_database("facade_bulk") as url:
        settings = Settings(max_connections=1, service_name="facade-bulk")
        with Database(url, settings) as db:
            migrate(db)
            facade = DataLayer(db)

            def raw(rows: list[tuple[Any, ...]]) -> None:
                with db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    cur.execute(create)
                    with cur.copy(copy_sql) as copy:
                        copy.set_types(TYPES)
                        for row in rows:
                            copy.write_row(row)
                    cur.execute(merge.as_string(conn).replace('"_bulk_clients"', "raw_bulk"))

            facade.upsert_clients(payloads(1_000, 1, "warm"))  # caches, first connection
            clock = CpuClock(url, settings.service_name)
            wall: dict[str, list[float]] = {}
            cpu: dict[str, list[float]] = {}
            company = 10
            sides = ["facade", "raw", "facade, collector paused"]
            for run in range(args.rounds):
                for side in sides[run % 3 :] + sides[: run % 3]:
                    company += 1
                    for kind in ("insert", "update"):
                        batch = payloads(args.rows, company, kind)
                        call: Callable[[], object]
                        if side == "raw":
                            call = functools.partial(raw, normalised(batch))
                        else:
                            call = functools.partial(facade.upsert_clients, batch)
                        with collector_paused(side.endswith("paused")):
                            w, c = clock.measure(call)
                        wall.setdefault(f"{kind} {side}", []).append(w)
                        cpu.setdefault(f"{kind} {side}", []).append(c)
                        del batch, call
            clock.close()

    print(f"upsert_clients: {args.rows} mappings, {args.rounds} rounds; median [min-max]")
    for kind, values in validation.items():
        print(
            f"  validate_payloads ({kind}): {statistics.median(values):5.2f} us/row"
            f" [{min(values):.2f}-{max(values):.2f}]   target: at most 3"
        )
    for kind in ("insert", "update"):
        theirs = wall[f"{kind} raw"]
        print(f"  {kind}s: raw COPY+merge {statistics.median(theirs):5.2f} s")
        for side in ("facade", "facade, collector paused"):
            ours = wall[f"{kind} {side}"]
            ratio = [a / b for a, b in zip(ours, theirs, strict=True)]
            line = f"    {side:<25} {statistics.median(ours):5.2f} s; /raw wall {spread(ratio)}"
            if clock.available:
                cpu_ratio = [
                    a / b for a, b in zip(cpu[f"{kind} {side}"], cpu[f"{kind} raw"], strict=True)
                ]
                line += f", cpu {spread(cpu_ratio)}"
            print(line + ("   target: within 1.25x" if side == "facade" else ""))
    return 0


@contextmanager
def collector_paused(paused: bool) -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (the benchmark's own choice)."""
    if not paused:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _client_normalizers() -> Any:
    # The facade's own table of normalisers for client payloads (what upsert_clients runs).
    from datalayer import _policy

    return _policy.CLIENT_FIELDS


if __name__ == "__main__":
    sys.exit(main())
