"""Fail fast in an outage: the server stopped, reads degrade at once; started, they recover.

Sync and async alike, on the suite's throwaway cluster. The CLI too: with the
server down ``datalayer health``, ``migrate`` and ``demo`` exit 1 at once
(connection refused) or within the connect timeout (a server that never answers).
Times are printed and recorded for docs/reliability.md; the bounds asserted are
outcomes ("not the pool timeout per call"), generous on purpose.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from datalayer import AsyncDatabase, AsyncDataLayer, Database, DataLayer, Settings
from errorkit.testing import capture_logs

from ._pgcluster import ThrowawayServer
from ._sentry import BlackHole
from .conftest import record_figure

COMPANY = 7101
READS = 10
# The pool timeout a caller would wait out per call without the breaker.
POOL_TIMEOUT = 10.0
# Generous outcome bounds: ten reads in far less than one pool timeout, recovery
# in far less than psycopg_pool's own reconnect backoff.
OUTAGE_TOTAL_BOUND_S = 5.0
RECOVERY_BOUND_S = 15.0


def outage_settings(name: str) -> Settings:
    return Settings(
        max_connections=3,
        pool_timeout=POOL_TIMEOUT,
        connect_timeout=2.0,
        expected_services=1,
        service_name=name,
    )


def seed(layer: DataLayer) -> None:
    layer.upsert_company({"company_id": COMPANY, "title": "Outage salon"})
    layer.upsert_client(
        {"yclients_id": 1, "company_id": COMPANY, "name": "Anna", "phone": "79680000001"}
    )


def _report(flavour: str, per_call: list[float], recovered_after: float) -> None:
    summary = (
        f"{READS} lenient reads with the server stopped: "
        f"{min(per_call) * 1000:.1f}..{max(per_call) * 1000:.1f} ms each, "
        f"{sum(per_call) * 1000:.0f} ms in all; reads back "
        f"{recovered_after * 1000:.0f} ms after the server was started"
    )
    print(f"\n[{flavour}] {summary}")
    record_figure(f"outage ({flavour})", summary)


def test_outage_reads_fail_fast_and_recover(
    cluster: ThrowawayServer, clean_cluster_url: str
) -> None:
    with Database(clean_cluster_url, outage_settings("rel-outage")) as db:
        layer = DataLayer(db)
        seed(layer)
        assert layer.get_client_by_id(1, COMPANY) is not None
        cluster.stop()
        per_call: list[float] = []
        try:
            with capture_logs() as logs:
                for _ in range(READS):
                    started = time.perf_counter()
                    assert layer.get_client_by_id(1, COMPANY) is None  # degraded, not raised
                    per_call.append(time.perf_counter() - started)
        finally:
            cluster.start()
        back = time.perf_counter()
        deadline = time.monotonic() + RECOVERY_BOUND_S
        while layer.get_client_by_id(1, COMPANY) is None:
            assert time.monotonic() < deadline, "reads did not recover"
            time.sleep(0.01)
        recovered_after = time.perf_counter() - back
    _report("sync", per_call, recovered_after)
    assert sum(per_call) < OUTAGE_TOTAL_BOUND_S
    # The outage was noticed once, not once per call.
    assert len([line for line in logs if line["event"] == "database_unreachable"]) == 1


def test_outage_reads_fail_fast_and_recover_async(
    cluster: ThrowawayServer, clean_cluster_url: str
) -> None:
    async def scenario() -> tuple[list[float], float]:
        async with AsyncDatabase(clean_cluster_url, outage_settings("rel-outage-async")) as db:
            layer = AsyncDataLayer(db)
            await layer.upsert_company({"company_id": COMPANY, "title": "Outage salon"})
            await layer.upsert_client(
                {"yclients_id": 1, "company_id": COMPANY, "name": "Anna", "phone": "79680000001"}
            )
            assert await layer.get_client_by_id(1, COMPANY) is not None
            await asyncio.to_thread(cluster.stop)
            per_call: list[float] = []
            try:
                for _ in range(READS):
                    started = time.perf_counter()
                    assert await layer.get_client_by_id(1, COMPANY) is None
                    per_call.append(time.perf_counter() - started)
            finally:
                await asyncio.to_thread(cluster.start)
            back = time.perf_counter()
            deadline = time.monotonic() + RECOVERY_BOUND_S
            while await layer.get_client_by_id(1, COMPANY) is None:
                assert time.monotonic() < deadline, "reads did not recover"
                await asyncio.sleep(0.01)
            return per_call, time.perf_counter() - back

    per_call, recovered_after = asyncio.run(scenario())
    _report("async", per_call, recovered_after)
    assert sum(per_call) < OUTAGE_TOTAL_BOUND_S


def test_constructors_wait_on_nothing_with_the_server_down(cluster: ThrowawayServer) -> None:
    url = cluster.url
    cluster.stop()
    try:
        started = time.perf_counter()
        db = Database(url, outage_settings("rel-ctor"))
        built = time.perf_counter() - started
        try:
            env = {"DATABASE_URL": url, "POSTGRES_POOL_TIMEOUT": "10"}
            started = time.perf_counter()
            from_env = Database.from_env(env)
            from_env_s = time.perf_counter() - started
            from_env.close()
        finally:
            db.close()

        async def open_async() -> float:
            started = time.perf_counter()
            async with AsyncDatabase(url, outage_settings("rel-ctor-async")):
                return time.perf_counter() - started

        opened_async = asyncio.run(open_async())
    finally:
        cluster.start()
    summary = (
        f"Database() {built * 1000:.1f} ms, Database.from_env() {from_env_s * 1000:.1f} ms, "
        f"AsyncDatabase open {opened_async * 1000:.1f} ms (server stopped)"
    )
    print("\n" + summary)
    record_figure("constructors with the server down", summary)
    # Each far below one pool timeout (10 s): nothing waited for a connection.
    assert max(built, from_env_s, opened_async) < POOL_TIMEOUT / 2


def _cli(args: list[str], env_overrides: dict[str, str]) -> tuple[int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "DATABASE_"))}
    env.update(env_overrides)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "datalayer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, time.perf_counter() - started, done.stdout + done.stderr


CONNECT_TIMEOUT_S = 2


@pytest.mark.parametrize("command", [["health"], ["migrate"], ["demo"]])
def test_cli_with_the_server_down_exits_1_at_once(cluster: ThrowawayServer, command: Any) -> None:
    url = cluster.url
    cluster.stop()
    try:
        code, elapsed, output = _cli(
            command,
            {"DATABASE_URL": url, "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S)},
        )
    finally:
        cluster.start()
    name = " ".join(command)
    summary = f"datalayer {name}, server stopped (refused): exit {code} in {elapsed:.2f} s"
    print("\n" + summary)
    record_figure(f"cli {' '.join(command)} down", summary)
    assert code == 1, output


def test_cli_health_with_a_server_that_never_answers(black_hole: BlackHole) -> None:
    """The slow kind of down: connections hang until the connect timeout."""
    url = f"host=127.0.0.1 port={black_hole.port} user=postgres dbname=postgres"
    code, elapsed, output = _cli(
        ["health"], {"DATABASE_URL": url, "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S)}
    )
    summary = (
        f"datalayer health, server never answers: exit {code} in {elapsed:.2f} s "
        f"(connect timeout {CONNECT_TIMEOUT_S} s)"
    )
    print("\n" + summary)
    record_figure("cli health black hole", summary)
    assert code == 1, output
    # Within the connect timeout plus the interpreter's start, not pool timeouts stacked.
    assert elapsed < CONNECT_TIMEOUT_S + 8
