"""What is particular to the async core: lifecycle, one source, cancellation, a free loop.

The behaviour both flavours share is proven by the parity modules (see
``tests/_flavours.py``); this module holds what only asyncio has, and the async
counterparts of the tests that drive threads.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from datalayer import (
    AsyncDatabase,
    AsyncDataLayer,
    Database,
    DataLayer,
    DataLayerError,
    Settings,
    TransientError,
    ValidationError,
    migrate_async,
)
from datalayer._policy import POLICY_ATTRIBUTE
from datalayer.models import Client, Company
from datalayer.repositories import AsyncClientsRepository, AsyncCompaniesRepository
from errorkit.testing import capture_events, capture_logs

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def guarded() -> T:
        return await main()

    return asyncio.run(guarded())


def _public_methods(cls: type[Any]) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    }


# --- one source --------------------------------------------------------------------


def test_generated_sync_modules_are_current() -> None:
    """CI fails when a sync module no longer matches its async source."""
    done = subprocess.run(
        [sys.executable, "tools/async_to_sync.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_check_catches_a_stale_file(tmp_path: Path) -> None:
    """The staleness check is not vacuous: a hand edit of a generated file fails it."""
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    for path in [*ROOT.glob("datalayer/**/*.py")]:
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    check = [sys.executable, "tools/async_to_sync.py", "--check", "--root", str(tmp_path)]

    def stale() -> subprocess.CompletedProcess[str]:
        return subprocess.run(check, cwd=ROOT, capture_output=True, text=True, check=False)

    assert stale().returncode == 0
    generated = tmp_path / "datalayer/_database.py"
    text = generated.read_text(encoding="utf-8")
    assert "async def" not in text and "await " not in text
    generated.write_text(text.replace("def ping(", "def ping_by_hand("), encoding="utf-8")
    done = stale()
    assert done.returncode == 1
    assert "stale: datalayer/_database.py" in done.stderr


def test_every_io_module_with_an_async_source_is_generated() -> None:
    """The sync twin of every ``*_async.py`` module is generated, not written by hand."""
    sources = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("datalayer/**/*_async.py"))
    assert sources, "no async source found"
    for source in sources:
        target = ROOT / source.replace("_async.py", ".py")
        text = target.read_text(encoding="utf-8")
        assert text.startswith(f"# WARNING: generated from {Path(source).name}"), target


def test_the_liveness_poll_works_without_select_poll(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no ``select.poll``: the checkout's poll falls back to ``select.select``."""
    import select

    from datalayer import _database_base

    monkeypatch.delattr(select, "poll")
    with Database(pg_url, Settings(max_connections=1)) as db:
        with db.connection() as conn:
            conn.execute("SELECT 1")
            assert _database_base.socket_readable(conn) is False  # type: ignore[arg-type]
            pid = conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        with capture_logs() as logs, db.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != pid  # the dead one was told and replaced
    assert any(line["event"] == "pool_connection_replaced" for line in logs)


def test_both_facades_expose_the_same_methods_with_the_same_signatures() -> None:
    sync_methods = _public_methods(DataLayer)
    async_methods = _public_methods(AsyncDataLayer)
    assert sync_methods.keys() == async_methods.keys()
    assert len(sync_methods) >= 21  # the 20 methods and health_check
    for name, signature in sync_methods.items():
        assert async_methods[name] == signature, name


def test_every_async_facade_method_is_a_coroutine_behind_the_same_boundary() -> None:
    for name, member in vars(AsyncDataLayer).items():
        if name.startswith("_") or not callable(member) or name == "health_check":
            continue
        assert inspect.iscoroutinefunction(getattr(AsyncDataLayer, name)), name
        assert getattr(member, POLICY_ATTRIBUTE) == getattr(vars(DataLayer)[name], POLICY_ATTRIBUTE)


def test_both_databases_expose_the_same_api() -> None:
    sync_methods = _public_methods(Database)
    async_methods = _public_methods(AsyncDatabase)
    assert sync_methods.keys() == async_methods.keys()
    for name in ("transaction", "run_in_transaction", "ping", "connection", "open", "close"):
        assert name in async_methods


# --- lifecycle ------------------------------------------------------------------------


def test_used_before_open_is_a_clear_error(pg_url: str) -> None:
    async def main() -> str:
        db = AsyncDatabase(pg_url)
        try:
            with pytest.raises(DataLayerError, match="not open yet") as caught:
                await AsyncClientsRepository(db).count()
            return str(caught.value)
        finally:
            await db.close()

    assert "await db.open()" in run(main)


def test_open_close_and_context_manager_warn_nothing(pg_url: str) -> None:
    async def main() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async with AsyncDatabase(pg_url) as db:
                assert await db.ping() > 0
            db = AsyncDatabase(pg_url)
            await db.open()
            await db.open()  # idempotent
            assert await db.ping() > 0
            await db.close()
            with pytest.raises(DataLayerError, match="closed"):
                await db.ping()

    run(main)


def test_migrate_async_applies_and_is_idempotent(new_database: Any) -> None:
    async def main(url: str) -> tuple[list[str], list[str]]:
        async with AsyncDatabase(url) as db:
            first = await migrate_async(db)
            second = await migrate_async(db)
            assert await AsyncCompaniesRepository(db).count() == 0
        return first, second

    with new_database("datalayer_async_migrate") as url:
        first, second = run(lambda: main(url))
    assert first and second == []


# --- transactions ---------------------------------------------------------------------


def test_serialization_failure_between_two_tasks_is_retried(clean_db: Any, pg_url: str) -> None:
    """Write skew under SERIALIZABLE between two tasks: one retries, both commit."""

    async def main() -> tuple[int, int, list[str]]:
        async with AsyncDatabase(pg_url, Settings(max_connections=2)) as db:
            tries = 0
            both_read = asyncio.Barrier(2)

            async def book(client_id: int) -> None:
                async def work() -> None:
                    nonlocal tries
                    tries += 1
                    async with db.connection() as conn:
                        await conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                        cur = await conn.execute("SELECT count(*) FROM clients")
                        await cur.fetchone()
                        if tries <= 2:
                            await both_read.wait()
                        await conn.execute(
                            "INSERT INTO clients (yclients_id, company_id, name)"
                            " VALUES (%s, 1, 'x')",
                            (client_id,),
                        )

                await db.run_in_transaction(work, retries=3)

            with capture_logs() as logs:
                await asyncio.gather(book(1), book(2))
            count = await AsyncClientsRepository(db).count()
        return tries, count, [line["event"] for line in logs]

    tries, count, events = run(main)
    assert count == 2
    assert tries == 3
    assert events.count("transaction_retry") == 1


def test_run_in_transaction_sleeps_without_blocking_the_loop(pg_url: str) -> None:
    async def main() -> tuple[int, int]:
        async with AsyncDatabase(pg_url) as db:
            calls = 0
            ticks = 0

            async def conflicting() -> None:
                nonlocal calls
                calls += 1
                raise TransientError("could not serialize access", sqlstate="40001")

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(ticker())
            with capture_events(), pytest.raises(TransientError):
                await db.run_in_transaction(conflicting, retries=3)
            task.cancel()
        return calls, ticks

    calls, ticks = run(main)
    assert calls == 4
    assert ticks > 10  # the backoff sleeps let the other task run


def test_transactions_of_two_tasks_stay_apart(clean_db: Any, pg_url: str) -> None:
    async def main() -> list[bool]:
        async with AsyncDatabase(pg_url) as db:
            companies = AsyncCompaniesRepository(db)
            inside = asyncio.Event()
            seen: list[bool] = []

            async def writer() -> None:
                async with db.transaction():
                    await companies.upsert(Company(company_id=7, title="uncommitted"))
                    seen.append(db.in_transaction())
                    inside.set()
                    await asyncio.sleep(0.05)

            async def reader() -> None:
                await inside.wait()
                seen.append(db.in_transaction())
                seen.append(await companies.count() == 0)

            await asyncio.gather(writer(), reader())
            seen.append(await companies.count() == 1)
        return seen

    assert run(main) == [True, False, True, True]


# --- cancellation ---------------------------------------------------------------------


def _our_active_queries(pg_url: str, application: str) -> list[str]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state, query FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application,),
        ).fetchall()
    return [f"{state}: {query}" for state, query in rows if state != "idle"]


def test_cancelled_calls_leave_clean_idle_connections(clean_db: Any, pg_url: str) -> None:
    """1,000 facade calls cancelled while waiting on a lock: no event, no active query,
    every pool connection idle and usable, and the next call succeeds."""
    application = "datalayer-cancel-test"
    calls = 1000

    async def main() -> tuple[dict[str, Any], list[str], Any, int]:
        settings = Settings(max_connections=3, service_name=application)
        async with AsyncDatabase(pg_url, settings) as db:
            facade = AsyncDataLayer(db)
            await facade.upsert_client({"yclients_id": 1, "company_id": 1, "name": "Anna"})
            locker = await psycopg.AsyncConnection.connect(pg_url)
            cancelled = 0
            try:
                await locker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
                with capture_events() as events:
                    for start in range(0, calls, 50):
                        tasks = [
                            asyncio.create_task(facade.get_client_by_id(1, 1))
                            for _ in range(min(50, calls - start))
                        ]
                        await asyncio.sleep(0.01)
                        for task in tasks:
                            task.cancel()
                        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                            cancelled += isinstance(outcome, asyncio.CancelledError)
                    # One more, cancelled by a timeout while its statement waits on the lock.
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await facade.get_client_by_id(1, 1)
                    cancelled += 1
            finally:
                await locker.close()
            stats = db.stats()
            active = _our_active_queries(pg_url, application)
            found = await facade.get_client_by_id(1, 1)
            assert not events, events
        return stats, active, found, cancelled

    stats, active, found, cancelled = run(main)
    assert cancelled == calls + 1
    assert active == []
    assert stats["in_use"] == 0
    assert stats["pool_available"] == stats["pool_size"]
    assert found is not None and found.yclients_id == 1


# --- the loop never blocks ---------------------------------------------------------------


def test_loop_runs_while_a_call_waits_on_a_row_lock(clean_db: Any, pg_url: str) -> None:
    """A 1 s wait on a row lock: a ticker scheduled every 10 ms never misses 100 ms."""

    async def main() -> tuple[float, Client | None]:
        async with AsyncDatabase(pg_url) as db:
            facade = AsyncDataLayer(db)
            await facade.upsert_client({"yclients_id": 2, "company_id": 1, "name": "Bo"})
            locker = await psycopg.AsyncConnection.connect(pg_url)
            gaps: list[float] = []
            try:
                # Not autocommit: the row lock lasts until the commit a second later.
                await locker.execute("SELECT 1 FROM clients WHERE yclients_id = 2 FOR UPDATE")

                async def release_later() -> None:
                    await asyncio.sleep(1.0)
                    await locker.commit()

                async def ticker() -> None:
                    last = time.monotonic()
                    while True:
                        await asyncio.sleep(0.01)
                        now = time.monotonic()
                        gaps.append(now - last)
                        last = now

                tick = asyncio.create_task(ticker())
                release = asyncio.create_task(release_later())
                stored = await facade.upsert_client(
                    {"yclients_id": 2, "company_id": 1, "name": "Bo Two"}
                )
                tick.cancel()
                await release
            finally:
                await locker.close()
            found = await facade.get_client_by_id(2, 1)
        assert stored is not None
        assert len(gaps) >= 50  # the ticker ran through the whole wait
        return max(gaps), found

    worst, found = run(main)
    print(f"\nlongest ticker gap while waiting on the lock: {worst * 1000:.1f} ms")
    assert worst < 0.1
    assert found is not None


# --- health -----------------------------------------------------------------------------


def test_async_health_check_is_bounded_with_asyncio(pg_url: str) -> None:
    async def main() -> Any:
        async with AsyncDatabase(pg_url, Settings(max_connections=1, pool_timeout=5)) as db:
            async with db.connection():  # the only connection: the ping has to wait
                with capture_events() as events:
                    report = await AsyncDataLayer(db).health_check(timeout=0.2)
            healthy = await AsyncDataLayer(db).health_check()
        return report, events, healthy

    report, events, healthy = run(main)
    assert report.healthy is False
    assert report.error_kind == "timeout"
    assert [e["tags"]["operation"] for e in events] == ["health_check"]
    assert healthy.healthy is True and healthy.latency_ms is not None


def test_async_facade_refuses_bad_input_before_any_sql(pg_url: str) -> None:
    async def main() -> list[dict[str, Any]]:
        db = AsyncDatabase(pg_url)  # never opened: any SQL would fail loudly
        facade = AsyncDataLayer(db)
        with capture_events() as events:
            with pytest.raises(ValidationError):
                await facade.get_client_by_phone("not a phone")
            with pytest.raises(ValidationError):
                await facade.upsert_client({"yclients_id": True, "company_id": 1})
        await db.close()
        return events

    assert run(main) == []
