"""Load on the async WhatsApp store: 200 tasks on a pool of 3, against a bare async pool.

Both sides make the same mix of calls (4 in 5 a ``get_keys`` of 4 ids, 1 in 5 a
``set_keys`` of 2 keys in one transaction) for the same bounded number of calls,
from the same 200 tasks, against the same database, in the same run, in
alternating rounds. The store side is ``AsyncAuthStateStore`` on an
``AsyncDatabase`` (validation, the Buffer-JSON codec, errorkit boundaries, the
sorted write plan, connection checks); the bare side is a
``psycopg_pool.AsyncConnectionPool`` of 3 autocommit connections executing the
store's own SQL text with ready-made parameters.

Usage::

    python benchmarks/load_whatsapp.py [--tasks 200] [--calls 10000] [--rounds 5]

The server is ``TEST_DATABASE_URL``, ``DATABASE_URL`` or 127.0.0.1:5432 (user
postgres); the script creates its own database and drops it at the end. Prints
throughput, errors (target 0) and the ratio store / bare (target at least 0.9x),
per round (both sides side by side) and its median over the rounds.
(A separate script, not a mode of ``load.py``, so the two merge without conflict.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from _common import scratch_database
from psycopg_pool import AsyncConnectionPool

POOL_SIZE = 3
SESSIONS = 20
KEYS_PER_SESSION = 200

Call = Callable[[random.Random], Awaitable[Any]]


async def run(call: Call, *, tasks: int, calls: int) -> tuple[float, int, dict[str, int]]:
    """``calls`` calls spread over ``tasks`` tasks that start together: (seconds, calls, errors)."""
    per_task = [calls // tasks + (1 if i < calls % tasks else 0) for i in range(tasks)]
    errors: dict[str, int] = {}
    start = asyncio.Event()

    async def worker(index: int) -> None:
        rng = random.Random(index)
        await start.wait()
        for _ in range(per_task[index]):
            try:
                await call(rng)
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    workers = [asyncio.create_task(worker(i)) for i in range(tasks)]
    await asyncio.sleep(0)
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*workers)
    return time.perf_counter() - started, sum(per_task), errors


def draw(rng: random.Random) -> tuple[str, list[str]]:
    session = f"s{rng.randrange(SESSIONS)}"
    ids = [str(rng.randrange(KEYS_PER_SESSION)) for _ in range(4)]
    return session, ids


def store_call(stores: dict[str, Any]) -> Call:
    async def call(rng: random.Random) -> Any:
        session, ids = draw(rng)
        store = stores[session]
        if rng.random() < 0.8:
            return await store.get_keys("session", ids)
        value = {"record": rng.randbytes(32), "n": rng.randrange(1000)}
        return await store.set_keys({"session": {ids[0]: value, ids[1]: value}})

    return call


def bare_call(pool: AsyncConnectionPool[Any]) -> Call:
    from datalayer.whatsapp._codec import dumps_value
    from datalayer.whatsapp._keys import GET_KEYS_SQL, UPSERT_KEYS_SQL

    ttl = 7 * 86400.0

    async def call(rng: random.Random) -> Any:
        session, ids = draw(rng)
        if rng.random() < 0.8:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    GET_KEYS_SQL, (session, "session", list(dict.fromkeys(ids)))
                )
                return await cursor.fetchall()
        value = dumps_value({"record": rng.randbytes(32), "n": rng.randrange(1000)})
        keys = sorted({ids[0], ids[1]})
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                UPSERT_KEYS_SQL,
                (session, ["session"] * len(keys), keys, [value] * len(keys), [ttl] * len(keys)),
            )
        return None

    return call


async def cpu_per_call(call: Call, calls: int = 1000) -> float:
    """Microseconds of process CPU per call, one task, no contention."""
    rng = random.Random(7)
    started = time.process_time()
    for _ in range(calls):
        await call(rng)
    return (time.process_time() - started) / calls * 1e6


async def main_async(args: argparse.Namespace) -> int:
    from datalayer import AsyncDatabase, Settings, migrate_async
    from datalayer.whatsapp import AsyncAuthStateStore

    settings = Settings(max_connections=POOL_SIZE, pool_timeout=60.0)
    with scratch_database("load_whatsapp") as url:
        async with AsyncDatabase(url, settings) as db:
            await migrate_async(db)
            stores = {f"s{n}": AsyncAuthStateStore(db, f"s{n}") for n in range(SESSIONS)}
            for store in stores.values():
                await store.set_keys(
                    {"session": {str(k): {"k": bytes([k % 256])} for k in range(KEYS_PER_SESSION)}}
                )
            async with AsyncConnectionPool(
                url,
                min_size=POOL_SIZE,
                max_size=POOL_SIZE,
                kwargs={"autocommit": True},
                timeout=60.0,
                open=False,
            ) as pool:
                await pool.wait()
                sides = {"store": store_call(stores), "bare": bare_call(pool)}
                for call in sides.values():  # warm-up
                    await run(call, tasks=8, calls=400)
                throughput: dict[str, list[float]] = {"store": [], "bare": []}
                ratios: list[float] = []
                errors = 0
                for round_ in range(args.rounds):
                    order = ["bare", "store"] if round_ % 2 == 0 else ["store", "bare"]
                    for name in order:
                        seconds, calls, errs = await run(
                            sides[name], tasks=args.tasks, calls=args.calls
                        )
                        throughput[name].append(calls / seconds)
                        if name == "store":
                            errors += sum(errs.values())
                        print(
                            f"round {round_ + 1}  {name:5}  {calls / seconds:8.0f} calls/s"
                            f"  errors {sum(errs.values())} {errs or ''}"
                        )
                    # Side by side in one round: the machine's load drifts between rounds.
                    ratios.append(throughput["store"][-1] / throughput["bare"][-1])
                stats = db.stats()
                cpu = {name: await cpu_per_call(call) for name, call in sides.items()}
    store_tp = statistics.median(throughput["store"])
    bare_tp = statistics.median(throughput["bare"])
    print()
    print(f"tasks {args.tasks}, pool {POOL_SIZE}, calls per round {args.calls}")
    print(f"store median throughput {store_tp:.0f} calls/s, bare {bare_tp:.0f} calls/s")
    print(
        f"ratio store / bare: median of rounds {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; target >= 0.9x); "
        f"of median throughputs {store_tp / bare_tp:.2f}x"
    )
    print(f"one task, CPU per call: store {cpu['store']:.0f} us, bare {cpu['bare']:.0f} us")
    print(f"store errors: {errors} (target 0)")
    print(f"store pool at the end: {stats}")
    return 0 if errors == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # the pool-wait warnings are rate-limited anyway
    # 200 tasks queue for 3 connections: every call would be "slow"; say nothing.
    os.environ.setdefault("ERRORKIT_SLOW_MS", "0")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
