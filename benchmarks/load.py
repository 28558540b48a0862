"""Load: 200 threads (or tasks) against a DataLayer with a pool of 3, against a bare pool.

Both sides run the same reads (a client by id, a client by phone, a company's
active staff) for the same bounded number of calls, with the same 200 threads,
against the same database, in the same run, alternating rounds so neither side
gets a warmer cache. The facade side pays for validation, the errorkit
boundary, connection checks and the repository's query building; the bare side
is a ``psycopg_pool.ConnectionPool`` of 3 autocommit connections executing the
same SQL text.

``--async`` runs the same comparison on asyncio: 200 tasks awaiting an
``AsyncDataLayer`` against 200 tasks on a bare ``psycopg_pool.AsyncConnectionPool``
of 3 running the same SQL text.

Usage::

    python benchmarks/load.py [--async] [--threads 200] [--calls 20000] [--rounds 3]

The server is ``TEST_DATABASE_URL``, ``DATABASE_URL`` or 127.0.0.1:5432 (user
postgres). The script creates its own database, seeds it, and drops it at the end.
Prints throughput, p50/p99 latency, errors (target 0) and the ratio
facade / bare (target at least 0.9x).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from _common import scratch_database
from psycopg_pool import AsyncConnectionPool, ConnectionPool

COMPANY_ID = 4242
CLIENTS = 2_000
STAFF = 20
POOL_SIZE = 3


def bare_statements(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The exact SQL text the repositories send for the three reads."""
    from datalayer.repositories import ClientsRepository, StaffRepository
    from datalayer.repositories._sql import build_select

    def render(table: Any, filters: dict[str, Any], **options: Any) -> str:
        return build_select(table, filters, **options).statement.as_string(conn)

    latest = {"order_by": "updated_at", "descending": True, "limit": 1}
    return {
        "client_by_id": render(
            ClientsRepository.table, {"yclients_id": 1, "company_id": 1}, **latest
        ),
        "client_by_phone": render(
            ClientsRepository.table, {"phone": "", "company_id": 1}, **latest
        ),
        "staff": render(
            StaffRepository.table, {"company_id": 1, "is_active": True}, order_by="name"
        ),
    }


def phone_of(client_id: int) -> str:
    return f"7968{client_id:07d}"


@dataclass
class Result:
    name: str
    calls: int
    errors: int
    seconds: float
    latencies: list[float] = field(repr=False)
    error_types: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.error_types.items())) or "-"
        return (
            f"{self.name:<7} {self.calls:>7} calls  {self.throughput:>8.0f} calls/s  "
            f"p50 {self.percentile(0.50):>7.2f} ms  p99 {self.percentile(0.99):>7.2f} ms  "
            f"errors {self.errors} ({kinds})"
        )


def seed(layer: Any) -> None:
    layer.upsert_company({"company_id": COMPANY_ID, "title": "Load salon", "is_active": True})
    clients = [
        {
            "yclients_id": i,
            "company_id": COMPANY_ID,
            "name": f"Client {i}",
            "phone": phone_of(i),
        }
        for i in range(1, CLIENTS + 1)
    ]
    layer.upsert_clients(clients)
    from datalayer.repositories import StaffRepository

    StaffRepository(layer.db).bulk_upsert(
        [
            {
                "yclients_id": i,
                "company_id": COMPANY_ID,
                "name": f"Master {i}",
                "is_active": i % 4 != 0,
            }
            for i in range(1, STAFF + 1)
        ]
    )


Call = Callable[[int], Any]


def run(name: str, call: Call, *, threads: int, calls: int) -> Result:
    """``calls`` calls spread over ``threads`` threads that start together."""
    per_thread = [calls // threads + (1 if i < calls % threads else 0) for i in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[dict[str, int]] = [{} for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        rng = random.Random(index)
        mine = latencies[index]
        barrier.wait()
        for _ in range(per_thread[index]):
            started = time.perf_counter()
            try:
                call(rng.randrange(1 << 30))
            except Exception as exc:
                kind = type(exc).__name__
                errors[index][kind] = errors[index].get(kind, 0) + 1
            mine.append(time.perf_counter() - started)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    seconds = time.perf_counter() - started
    return collect(name, per_thread, latencies, errors, seconds)


def collect(
    name: str,
    per_caller: list[int],
    latencies: list[list[float]],
    errors: list[dict[str, int]],
    seconds: float,
) -> Result:
    """One side's round, from what each caller (thread or task) recorded."""
    merged: dict[str, int] = {}
    for part in errors:
        for kind, count in part.items():
            merged[kind] = merged.get(kind, 0) + count
    return Result(
        name=name,
        calls=sum(per_caller),
        errors=sum(merged.values()),
        seconds=seconds,
        latencies=[x for part in latencies for x in part],
        error_types=merged,
    )


def cpu_per_call(call: Call, calls: int) -> float:
    """Microseconds of this thread's CPU per call, one caller, no contention.

    Thread CPU time does not count waiting on the server or on other processes,
    so on a busy machine it says more about the cost of each side than wall time.
    """
    started = time.thread_time()
    for i in range(calls):
        call(i)
    return (time.thread_time() - started) / calls * 1e6


def facade_call(layer: Any) -> Call:
    def call(draw: int) -> Any:
        client_id = draw % CLIENTS + 1
        pick = draw % 3
        if pick == 0:
            result = layer.get_client_by_id(client_id, COMPANY_ID)
        elif pick == 1:
            result = layer.get_client_by_phone(phone_of(client_id), COMPANY_ID)
        else:
            result = layer.get_staff(COMPANY_ID)
        if result is None or result == []:
            # Reads degrade to None / [] on failure; every seeded row exists, so an
            # empty answer here is a failure the facade reported and absorbed.
            raise LookupError("degraded read")
        return result

    return call


def bare_call(pool: ConnectionPool[Any], statements: dict[str, str]) -> Call:
    by_id = statements["client_by_id"]
    by_phone = statements["client_by_phone"]
    staff = statements["staff"]

    def call(draw: int) -> Any:
        client_id = draw % CLIENTS + 1
        pick = draw % 3
        with pool.connection() as conn:
            if pick == 0:
                rows = conn.execute(by_id, (client_id, COMPANY_ID, 1)).fetchall()
            elif pick == 1:
                rows = conn.execute(by_phone, (phone_of(client_id), COMPANY_ID, 1)).fetchall()
            else:
                rows = conn.execute(staff, (COMPANY_ID, True)).fetchall()
        if not rows:
            raise LookupError("no rows")
        return rows

    return call


# --- asyncio -----------------------------------------------------------------------

AsyncCall = Callable[[int], Awaitable[Any]]


async def run_async(name: str, call: AsyncCall, *, tasks: int, calls: int) -> Result:
    """``calls`` awaited calls spread over ``tasks`` tasks that start together."""
    per_task = [calls // tasks + (1 if i < calls % tasks else 0) for i in range(tasks)]
    latencies: list[list[float]] = [[] for _ in range(tasks)]
    errors: list[dict[str, int]] = [{} for _ in range(tasks)]
    start = asyncio.Event()

    async def worker(index: int) -> None:
        rng = random.Random(index)
        mine = latencies[index]
        await start.wait()
        for _ in range(per_task[index]):
            began = time.perf_counter()
            try:
                await call(rng.randrange(1 << 30))
            except Exception as exc:
                kind = type(exc).__name__
                errors[index][kind] = errors[index].get(kind, 0) + 1
            mine.append(time.perf_counter() - began)

    workers = [asyncio.create_task(worker(i)) for i in range(tasks)]
    await asyncio.sleep(0)
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*workers)
    seconds = time.perf_counter() - started
    return collect(name, per_task, latencies, errors, seconds)


async def cpu_per_call_async(call: AsyncCall, calls: int) -> float:
    started = time.thread_time()
    for i in range(calls):
        await call(i)
    return (time.thread_time() - started) / calls * 1e6


def async_facade_call(layer: Any) -> AsyncCall:
    async def call(draw: int) -> Any:
        client_id = draw % CLIENTS + 1
        pick = draw % 3
        if pick == 0:
            result = await layer.get_client_by_id(client_id, COMPANY_ID)
        elif pick == 1:
            result = await layer.get_client_by_phone(phone_of(client_id), COMPANY_ID)
        else:
            result = await layer.get_staff(COMPANY_ID)
        if result is None or result == []:
            raise LookupError("degraded read")
        return result

    return call


def async_bare_call(pool: AsyncConnectionPool[Any], statements: dict[str, str]) -> AsyncCall:
    by_id = statements["client_by_id"]
    by_phone = statements["client_by_phone"]
    staff = statements["staff"]

    async def call(draw: int) -> Any:
        client_id = draw % CLIENTS + 1
        pick = draw % 3
        async with pool.connection() as conn:
            if pick == 0:
                cur = await conn.execute(by_id, (client_id, COMPANY_ID, 1))
            elif pick == 1:
                cur = await conn.execute(by_phone, (phone_of(client_id), COMPANY_ID, 1))
            else:
                cur = await conn.execute(staff, (COMPANY_ID, True))
            rows = await cur.fetchall()
        if not rows:
            raise LookupError("no rows")
        return rows

    return call


async def main_async(
    args: argparse.Namespace,
) -> tuple[list[Result], list[Result], dict[str, list[float]], Any]:
    from datalayer import AsyncDatabase, AsyncDataLayer, Database, DataLayer, Settings, migrate

    settings = Settings(max_connections=POOL_SIZE, pool_timeout=30.0)
    with scratch_database("load_bench_async") as url:
        with Database(url, settings) as sync_db:
            migrate(sync_db)
            seed(DataLayer(sync_db))
        async with AsyncDatabase(url, settings) as db:
            layer = AsyncDataLayer(db)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url,
                min_size=POOL_SIZE,
                max_size=POOL_SIZE,
                kwargs={"autocommit": True},
                timeout=30.0,
                open=False,
            )
            await pool.open(wait=True)
            async with pool.connection() as conn:
                statements = bare_statements(conn)  # type: ignore[arg-type]
            fac, bare = async_facade_call(layer), async_bare_call(pool, statements)
            await run_async("warm-up", fac, tasks=8, calls=400)
            await run_async("warm-up", bare, tasks=8, calls=400)
            facade_results: list[Result] = []
            bare_results: list[Result] = []
            for round_ in range(args.rounds):
                order = [("bare", bare), ("facade", fac)]
                if round_ % 2:
                    order.reverse()
                for name, call in order:
                    result = await run_async(name, call, tasks=args.threads, calls=args.calls)
                    (facade_results if name == "facade" else bare_results).append(result)
                    print(f"round {round_ + 1}  {result.line()}")
            pool_stats = db.stats()
            cpu: dict[str, list[float]] = {"facade": [], "bare": []}
            for _ in range(3):
                cpu["bare"].append(await cpu_per_call_async(bare, 1500))
                cpu["facade"].append(await cpu_per_call_async(fac, 1500))
            await pool.close()
    return facade_results, bare_results, cpu, pool_stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--async", dest="use_async", action="store_true", help="tasks on the async facade"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    if args.use_async:
        facade_results, bare_results, cpu, pool_stats = asyncio.run(main_async(args))
    else:
        facade_results, bare_results, cpu, pool_stats = run_sync(args)
    return report(args, facade_results, bare_results, cpu, pool_stats)


def run_sync(
    args: argparse.Namespace,
) -> tuple[list[Result], list[Result], dict[str, list[float]], Any]:

    from datalayer import Database, DataLayer, Settings, migrate

    settings = Settings(max_connections=POOL_SIZE, pool_timeout=30.0)
    with scratch_database("load_bench") as url, Database(url, settings) as db:
        migrate(db)
        layer = DataLayer(db)
        seed(layer)
        with ConnectionPool(
            url,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            timeout=30.0,
            open=True,
        ) as pool:
            pool.wait()
            with pool.connection() as conn:
                statements = bare_statements(conn)
            fac, bare = facade_call(layer), bare_call(pool, statements)
            # Warm-up: plans cached, connections open, code paths hot.
            run("warm-up", fac, threads=8, calls=400)
            run("warm-up", bare, threads=8, calls=400)
            facade_results: list[Result] = []
            bare_results: list[Result] = []
            for round_ in range(args.rounds):
                order = [("bare", bare), ("facade", fac)]
                if round_ % 2:
                    order.reverse()
                for name, call in order:
                    result = run(name, call, threads=args.threads, calls=args.calls)
                    (facade_results if name == "facade" else bare_results).append(result)
                    print(f"round {round_ + 1}  {result.line()}")
            pool_stats = db.stats()
            # The same calls from one thread: CPU per call, alternating sides.
            cpu = {"facade": [], "bare": []}
            for _ in range(3):
                cpu["bare"].append(cpu_per_call(bare, 1500))
                cpu["facade"].append(cpu_per_call(fac, 1500))
    return facade_results, bare_results, cpu, pool_stats


def report(
    args: argparse.Namespace,
    facade_results: list[Result],
    bare_results: list[Result],
    cpu: dict[str, list[float]],
    pool_stats: Any,
) -> int:
    fac_tp = statistics.median(r.throughput for r in facade_results)
    bare_tp = statistics.median(r.throughput for r in bare_results)
    errors = sum(r.errors for r in facade_results)
    print()
    callers = "tasks" if args.use_async else "threads"
    print(f"{callers} {args.threads}, pool {POOL_SIZE}, calls per round {args.calls}")
    print(f"facade median throughput {fac_tp:.0f} calls/s, bare {bare_tp:.0f} calls/s")
    print(f"ratio facade / bare: {fac_tp / bare_tp:.2f}x (target >= 0.9x)")
    fac_cpu, bare_cpu = min(cpu["facade"]), min(cpu["bare"])
    print(
        f"one caller, CPU per call: facade {fac_cpu:.0f} us, bare {bare_cpu:.0f} us "
        f"(bare / facade {bare_cpu / fac_cpu:.2f}x)"
    )
    print(f"facade errors: {errors} (target 0)")
    print(f"facade pool at the end: {pool_stats}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
