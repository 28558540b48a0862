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

Then the facade with Prometheus metrics on (the default: its boundary files each
call in ``datalayer_operation_duration_seconds``) against off
(``ERRORKIT_METRICS=false``), in alternating batches, and what the observer costs
on its own (target: metrics on within 1.05x of off).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import psycopg
from _common import scratch_database
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from datalayer import Database, DataLayer, Settings, migrate
from datalayer._metrics import operation_observer
from datalayer.models import Client
from datalayer.repositories import ClientsRepository
from datalayer.repositories._sql import build_select
from errorkit import captured
from errorkit._config import settings as errorkit_settings

COMPANY_ID = 1
TYPED_PHONE = "8 (968) 648-44-88"
STORED_PHONE = "79686484488"
CLIENTS = 1_000


def measure(
    fn: Callable[[], Any], calls: int, cpu_clock: Callable[[], float] = time.process_time
) -> tuple[float, float]:
    """Wall time and CPU time (this process's, by default) per call, in microseconds."""
    wall, cpu = time.perf_counter(), cpu_clock()
    for _ in range(calls):
        fn()
    return (
        (time.perf_counter() - wall) / calls * 1e6,
        (cpu_clock() - cpu) / calls * 1e6,
    )


def metrics_on_off(
    fn: Callable[[], Any], rounds: int, batch: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) per call of ``fn`` with metrics on and off, in alternating small batches.

    Small batches, alternated (on-off, then off-on), give both sides the same share
    of a machine whose load changes from second to second.
    """
    times: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    try:
        for n in range(rounds):
            for on in (True, False) if n % 2 == 0 else (False, True):
                errorkit_settings.metrics = on
                times["on" if on else "off"].append(measure(fn, batch, cpu_clock=time.thread_time))
    finally:
        errorkit_settings.metrics = True
    return times


def observer_cost(number: int = 200_000) -> float:
    """What the facade's observer adds to one call, in microseconds of CPU: a boundary
    wearing it minus the same boundary without it, on a function that does nothing."""

    def nothing() -> None:
        return None

    plain = captured("benchmark", "nothing")(nothing)
    observed = captured("benchmark", "nothing", observer=operation_observer("benchmark"))(nothing)
    best = {}
    for name, fn in (("plain", plain), ("observed", observed)):
        timer = timeit.Timer(fn, timer=time.thread_time)
        best[name] = min(timer.repeat(repeat=7, number=number)) / number * 1e6
    return best["observed"] - best["plain"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per repeat and side")
    parser.add_argument("--repeats", type=int, default=15, help="alternating rounds per side")
    parser.add_argument(
        "--switch-rounds", type=int, default=300, help="metrics on/off: rounds of each side"
    )
    parser.add_argument("--batch", type=int, default=50, help="metrics on/off: calls per batch")
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
            switched = metrics_on_off(through_facade, args.switch_rounds, args.batch)
        isolated = observer_cost()

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
    print(
        f"metrics on / off ({args.switch_rounds} rounds of {args.batch} calls each, order"
        " alternating; ERRORKIT_METRICS switched between batches):"
    )
    for clock in ("wall", "cpu"):
        on = [w if clock == "wall" else c for w, c in switched["on"]]
        off = [w if clock == "wall" else c for w, c in switched["off"]]
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        label = "wall" if clock == "wall" else "this thread's CPU"
        on_us, off_us = statistics.median(on), statistics.median(off)
        print(
            f"  {label:17s}: on {on_us:6.1f} us/call, off {off_us:6.1f} us/call:"
            f" {on_us / off_us:.3f}x (median of rounds {statistics.median(ratios):.3f}x)"
        )
    off_cpu = statistics.median(c for _, c in switched["off"])
    print(
        f"  the observer alone (an observed boundary minus a plain one, success path):"
        f" {isolated * 1e3:.0f} ns/call = {isolated / off_cpu * 100:.2f} % of a facade call's CPU"
    )
    print("  target: metrics on within 1.05x of off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
