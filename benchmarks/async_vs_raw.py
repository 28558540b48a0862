"""One async facade read against the same query on a raw ``psycopg.AsyncConnection``.

The facade side awaits ``AsyncDataLayer.get_client_by_phone("8 (968) 648-44-88", 1)``:
phone normalisation, id checks, the errorkit boundary, the repository's query
building and the AsyncDatabase's connection checkout. The raw side awaits the
text of the very statement the repository builds for that call on one open
``psycopg.AsyncConnection`` (autocommit, prepared), fetching a tuple row. The
layers in between show where the time goes: psycopg_pool's own async checkout,
then the AsyncDatabase's checkout, then the repository.

Reference rows (not targets): the same query through asyncpg (prepared) and
through SQLAlchemy 2 Core with its async engine on the psycopg driver, so a user
sees where this stands against what they might pick instead. They need the
``bench`` extra (``pip install -e '.[bench]'``) and are skipped without it.

Usage::

    python benchmarks/async_vs_raw.py [--calls 1000] [--repeats 15]

The server is ``TEST_DATABASE_URL``, ``DATABASE_URL`` or 127.0.0.1:5432 (user
postgres). The script creates its own database, seeds it, and drops it at the
end. Sides alternate within each repeat; the ratio printed is the median over
repeats of facade / raw (wall time and this process's CPU time; target: within
1.15x).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from _common import scratch_database
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from datalayer import AsyncDatabase, AsyncDataLayer, Settings, migrate_async
from datalayer.repositories import AsyncClientsRepository, ClientsRepository
from datalayer.repositories._sql import build_select

COMPANY_ID = 1
TYPED_PHONE = "8 (968) 648-44-88"
STORED_PHONE = "79686484488"
CLIENTS = 1_000

Side = Callable[[], Awaitable[Any]]


async def measure(fn: Side, calls: int) -> tuple[float, float]:
    """Wall time and this process's CPU time per call, in microseconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await fn()
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        (time.process_time() - cpu) / calls * 1e6,
    )


async def reference_sides(url: str, statement: str, params: tuple[Any, ...]) -> dict[str, Any]:
    """asyncpg and SQLAlchemy sides, when the ``bench`` extra is installed."""
    sides: dict[str, Any] = {}
    closers: list[Callable[[], Awaitable[Any]]] = []
    info = conninfo_to_dict(url)
    try:
        import asyncpg
    except ImportError:
        print("  (asyncpg not installed: pip install -e '.[bench]')")
    else:
        apg = await asyncpg.connect(
            host=info.get("host"),
            port=int(info.get("port") or 5432),
            user=info.get("user"),
            database=info.get("dbname"),
        )
        positional = statement
        for i in range(1, len(params) + 1):
            positional = positional.replace("%s", f"${i}", 1)
        prepared = await apg.prepare(positional)

        async def through_asyncpg() -> Any:
            return await prepared.fetchrow(*params)

        sides["asyncpg (ref)"] = through_asyncpg
        closers.append(apg.close)
    try:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine
    except ImportError:
        print("  (SQLAlchemy not installed: pip install -e '.[bench]')")
    else:
        host, port = info.get("host"), info.get("port") or 5432
        engine = create_async_engine(
            f"postgresql+psycopg://{info.get('user')}@{host}:{port}/{info.get('dbname')}",
            pool_size=1,
            max_overflow=0,
        )
        # text() reads ``:name::type`` badly: spell the casts out.
        named = re.sub(r"%s::(\w+(?: precision)?(?:\[\])?)", r"CAST(%s AS \1)", statement)
        for i in range(len(params)):
            named = named.replace("%s", f":p{i}", 1)
        query = text(named)
        bound = {f"p{i}": value for i, value in enumerate(params)}

        async def through_sqlalchemy() -> Any:
            async with engine.connect() as conn:
                return (await conn.execute(query, bound)).first()

        sides["SQLAlchemy Core (ref)"] = through_sqlalchemy
        closers.append(engine.dispose)
    sides["_closers"] = closers
    return sides


async def main_async(args: argparse.Namespace) -> None:
    with scratch_database("async_bench") as url:
        async with AsyncDatabase(url, Settings(service_name="async-bench")) as db:
            await migrate_async(db)
            facade = AsyncDataLayer(db)
            await facade.upsert_clients(
                {
                    "yclients_id": i,
                    "company_id": COMPANY_ID,
                    "name": f"client {i}",
                    "phone": f"7968{i:07d}" if i > 1 else STORED_PHONE,
                }
                for i in range(1, CLIENTS + 1)
            )
            query = build_select(
                ClientsRepository.table,
                {"phone": STORED_PHONE, "company_id": COMPANY_ID},
                order_by="updated_at",
                descending=True,
                limit=1,
            )
            raw = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=0)
            statement = query.statement.as_string(raw)
            params = tuple(query.params)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
            )
            await pool.open(wait=True)
            repository = AsyncClientsRepository(db)

            async def raw_connection() -> Any:
                return await (await raw.execute(statement, params)).fetchone()

            async def pool_checkout() -> Any:
                async with pool.connection() as conn:
                    return await (await conn.execute(statement, params)).fetchone()

            async def database_checkout() -> Any:
                async with db.connection() as conn:
                    return await (await conn.execute(statement, params)).fetchone()

            async def through_repository() -> Any:
                return await repository.find_by_phone(STORED_PHONE, COMPANY_ID)

            async def through_facade() -> Any:
                return await facade.get_client_by_phone(TYPED_PHONE, COMPANY_ID)

            found = await through_facade()
            assert found is not None and found.yclients_id == 1, found
            sides: dict[str, Side] = {
                "raw AsyncConnection": raw_connection,
                "psycopg_pool checkout": pool_checkout,
                "+ AsyncDatabase pool": database_checkout,
                "+ repository": through_repository,
                "facade": through_facade,
            }
            references = await reference_sides(url, statement, params)
            closers = references.pop("_closers")
            sides.update(references)

            for fn in sides.values():  # warm up: prepared statements, caches
                await measure(fn, min(args.calls, 300))
            wall: dict[str, list[float]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.repeats):
                for name, fn in sides.items():
                    w, c = await measure(fn, args.calls)
                    wall[name].append(w)
                    cpu[name].append(c)
            for close in closers:
                await close()
            await pool.close()
            await raw.close()

    print(f"get_client_by_phone, async: {args.repeats} repeats x {args.calls} calls per side")
    base = "raw AsyncConnection"
    for name in sides:
        ratios = [s / r for s, r in zip(wall[name], wall[base], strict=True)]
        cpu_ratios = [s / r for s, r in zip(cpu[name], cpu[base], strict=True)]
        print(
            f"  {name:22s}: wall median {statistics.median(wall[name]):7.1f} us/call,"
            f" CPU median {statistics.median(cpu[name]):6.1f} us/call;"
            f" / raw {statistics.median(ratios):.2f}x wall"
            f" ({min(ratios):.2f}-{max(ratios):.2f}), {statistics.median(cpu_ratios):.2f}x CPU"
        )
    print("  target: facade within 1.15x of raw (wall median and client CPU)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per repeat and side")
    parser.add_argument("--repeats", type=int, default=15, help="alternating rounds per side")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
