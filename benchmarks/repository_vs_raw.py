"""Repository calls against the same SQL on a raw psycopg connection from the same pool.

Run: ``python benchmarks/repository_vs_raw.py [--rounds 3] [--bulk-only]`` (uses
TEST_DATABASE_URL, DATABASE_URL or the server on 127.0.0.1:5432; creates and drops
its own database). Prints timings and ratios; targets: find_one / upsert within
1.15x of raw, bulk_upsert within 1.25x of the fastest raw bulk method and at least
20x faster than row by row. ``bulk_upsert`` is also set against its floor, a plain
COPY straight into the table (fresh keys, no conflict handling), in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import CpuClock, scratch_database, server_url, spread
from psycopg import sql
from psycopg.types.json import Jsonb

from datalayer import Database, Settings, migrate
from datalayer.models import Client
from datalayer.repositories import ClientsRepository, _sql

SERVER = server_url()
# Single-row calls run in short alternating batches, so load from anything else on the
# machine hits both sides alike; the figure is the median of the per-batch means.
BATCHES = 60
BULK_ROWS = 100_000
TYPES = ["bigint", "bigint", "text", "text", "text", "date", "integer", "text[]", "jsonb"]
ROW_BY_ROW_SAMPLE = 1_000  # row by row is timed on a sample and scaled to BULK_ROWS


def per_call_us(fn: Callable[[int], object], calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e6


def compare(
    name: str, ours: Callable[[int], object], raw: Callable[[int], object], batch: int
) -> None:
    for fn in (ours, raw):  # warm up: prepared statements, caches
        per_call_us(fn, 100)
    ours_us: list[float] = []
    raw_us: list[float] = []
    for _ in range(BATCHES):
        ours_us.append(per_call_us(ours, batch))
        raw_us.append(per_call_us(raw, batch))
    a, b = statistics.median(ours_us), statistics.median(raw_us)
    print(f"{name:<28} repository {a:8.1f} us   raw {b:8.1f} us   ratio {a / b:5.2f}x")


def client(i: int, company_id: int = 1) -> Client:
    return Client(
        yclients_id=i,
        company_id=company_id,
        name=f"client {i}",
        phone=f"7900{i:07d}",
        visit_count=i % 50,
        tags=["bench"],
        preferences={"i": i},
    )


def main(*, rounds: int = 3, bulk_only: bool = False) -> None:
    with scratch_database("datalayer_bench", SERVER) as url:
        settings = Settings(max_connections=2, service_name="bench")
        with Database(url, settings) as db:
            migrate(db)
            clients = ClientsRepository(db)
            clients.bulk_upsert(client(i) for i in range(1_000))

            if not bulk_only:
                single_row_benchmarks(db, clients)
            bulk_benchmarks(db, clients, url, rounds)


def single_row_benchmarks(db: Database, clients: ClientsRepository) -> None:
    """find_one and upsert of one row against the same statement on a raw pool connection."""
    table = ClientsRepository.table
    find = _sql.build_select(table, {"yclients_id": 1, "company_id": 1}, limit=1)
    find_sql = find.statement.as_string(None)

    def raw_find(i: int) -> Any:
        conn = db.pool.getconn()
        try:
            return conn.execute(find_sql, (i % 1000, 1, 1)).fetchone()
        finally:
            db.pool.putconn(conn)

    def repo_find(i: int) -> Any:
        return clients.find_one({"yclients_id": i % 1000, "company_id": 1})

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"same pool ({db.pool.max_size} connections); {BATCHES} alternating batches,"
        f" medians of the batch means; load average {load} on {os.cpu_count()} CPUs"
    )
    compare("find_one by key", repo_find, raw_find, batch=50)

    up = _sql.build_upsert(table, client(0))
    up_sql = up.statement.as_string(None)
    rows = [client(i) for i in range(1_000)]
    columns = [c for c in table.writable]

    def raw_upsert(i: int) -> Any:
        row = rows[i % 1000]
        params = [getattr(row, c) for c in columns]
        params[columns.index("preferences")] = Jsonb(row.preferences)
        conn = db.pool.getconn()
        try:
            return conn.execute(up_sql, params).fetchone()
        finally:
            db.pool.putconn(conn)

    def repo_upsert(i: int) -> Any:
        return clients.upsert(rows[i % 1000])

    compare("upsert one row", repo_upsert, raw_upsert, batch=10)


def bulk_benchmarks(db: Database, clients: ClientsRepository, url: str, rounds: int) -> None:
    """100k-row loads: the floor, raw COPY+merge and ``bulk_upsert``, then row by row.

    The floor is a plain COPY straight into ``clients`` (fresh keys, no conflict
    handling: the least work any bulk write of these rows can do). Each round runs
    every side on its own fresh company ids, inserting 100k rows and then writing the
    same keys again (updates), in a rotating order, and then inserting 100k rows in
    random order ("shuffled": a sync that does not arrive in key order; raw sends them
    as they come, the repository in key order); ratios are taken within a round and
    printed as median [min-max] over the rounds.
    """
    table = ClientsRepository.table
    columns = table.writable
    statements = _sql.build_bulk_upsert(table, tuple(columns))
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    create = sql.SQL(
        "CREATE TEMP TABLE raw_bulk ON COMMIT DROP AS SELECT {} FROM clients WITH NO DATA"
    ).format(column_list)
    # Text COPY with fixed types measured faster than FORMAT BINARY here (0.76-0.91 s
    # against 1.03-1.07 s for 100k client rows).
    copy_sql = sql.SQL("COPY raw_bulk ({}) FROM STDIN").format(column_list)
    floor_sql = sql.SQL("COPY clients ({}) FROM STDIN").format(column_list)

    def write_rows(copy: Any, rows: list[Client]) -> None:
        copy.set_types(TYPES)
        for r in rows:
            copy.write_row(
                (r.yclients_id, r.company_id, r.name, r.phone, r.email,
                 r.last_visit_date, r.visit_count, r.tags, r.preferences)
            )  # fmt: skip

    def floor(rows: list[Client]) -> None:
        with (
            db.pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(floor_sql) as copy,
        ):
            write_rows(copy, rows)

    def raw_copy(rows: list[Client]) -> None:
        # The fastest raw method: COPY into a temp table, one INSERT ... ON CONFLICT.
        with db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(create)
            with cur.copy(copy_sql) as copy:
                write_rows(copy, rows)
            merge = statements.merge.as_string(conn).replace('"_bulk_clients"', "raw_bulk")
            cur.execute(merge)

    def batch(company_id: int, label: str) -> list[Client]:
        made = [
            dataclasses.replace(client(i, company_id), name=f"{label} {i}")
            for i in range(BULK_ROWS)
        ]
        if label == "shuffled":
            random.Random(company_id).shuffle(made)
        return made

    clock = CpuClock(url, db.settings.service_name)
    sides: list[tuple[str, Callable[[list[Client]], object]]] = [
        ("floor", floor),
        ("raw", raw_copy),
        ("repository", clients.bulk_upsert),
    ]
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    company = 10
    for run in range(rounds):
        for side, fn in sides[run % 3 :] + sides[: run % 3]:
            company += 1
            # The second pass finds every key present; the third writes fresh ones again.
            for kind in ("insert", "update", "shuffled"):
                if side == "floor" and kind != "insert":
                    continue  # a plain COPY cannot write over existing keys
                rows = batch(company + 1000 if kind == "shuffled" else company, kind)
                seconds, used = clock.measure(functools.partial(fn, rows))
                wall.setdefault(f"{kind} {side}", []).append(seconds)
                cpu.setdefault(f"{kind} {side}", []).append(used)
    clock.close()

    def ratios(of: dict[str, list[float]], a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(of[a], of[b], strict=True)]

    print(
        f"bulk: {BULK_ROWS // 1000}k client rows, {rounds} rounds; median [min-max];"
        " cpu = this process + its server backends"
    )
    floor_s = statistics.median(wall["insert floor"])
    print(f"{'plain COPY into the table':<28} floor {floor_s:8.2f} s (fresh keys only)")
    for kind in ("insert", "update", "shuffled"):
        ours = statistics.median(wall[f"{kind} repository"])
        raw = statistics.median(wall[f"{kind} raw"])
        vs_raw = spread(ratios(wall, f"{kind} repository", f"{kind} raw"))
        vs_floor = spread(ratios(wall, f"{kind} repository", "insert floor"))
        print(
            f"{f'bulk_upsert 100k ({kind})':<28} repository {ours:5.2f} s   "
            f"raw COPY+merge {raw:5.2f} s   vs raw {vs_raw}   vs floor {vs_floor}"
        )
        if clock.available:
            print(
                f"{'':<28} cpu: vs raw "
                f"{spread(ratios(cpu, f'{kind} repository', f'{kind} raw'))}   vs floor "
                f"{spread(ratios(cpu, f'{kind} repository', 'insert floor'))}"
            )

    up_sql = _sql.build_upsert(table, client(0)).statement.as_string(None)
    sample = batch(99, "row")[:ROW_BY_ROW_SAMPLE]

    def row_by_row(one_transaction: bool) -> None:
        with db.pool.connection() as conn:
            if one_transaction:
                conn.execute("BEGIN")
            for r in sample:
                params = [getattr(r, c) for c in columns]
                params[columns.index("preferences")] = Jsonb(r.preferences)
                conn.execute(up_sql, params)
            if one_transaction:
                conn.execute("COMMIT")

    def timed(fn: Callable[[], object]) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    scale = BULK_ROWS / ROW_BY_ROW_SAMPLE
    in_one = timed(lambda: row_by_row(True)) * scale
    sample = batch(98, "row")[:ROW_BY_ROW_SAMPLE]
    each_committed = timed(lambda: row_by_row(False)) * scale
    ours = statistics.median(wall["insert repository"])
    for label, seconds in (("in one transaction", in_one), ("each committed", each_committed)):
        print(
            f"{'row-by-row upserts':<28} {label:<18} {seconds:7.2f} s (from"
            f" {ROW_BY_ROW_SAMPLE} rows)   bulk_upsert {seconds / ours:5.1f}x faster"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="bulk rounds (default 3)")
    parser.add_argument("--bulk-only", action="store_true", help="skip the single-row calls")
    args = parser.parse_args()
    main(rounds=args.rounds, bulk_only=args.bulk_only)
