"""AsyncAuthStateStore under concurrency and cancellation, natively async on the real server.

Everything else about the async store (codec, TTLs, validation, reports) runs
in test_whatsapp.py's async flavour.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from datalayer import AsyncDatabase, Database, Settings
from datalayer.errors import DataLayerError
from datalayer.whatsapp import AsyncAuthStateStore, AuthStateStore, cleanup_expired_keys_async
from errorkit.testing import capture_events

WHATSAPP_TABLES = "whatsapp_keys, whatsapp_auth, whatsapp_cleanup_runs"


@pytest.fixture
def wa_db(db: Database) -> Iterator[Database]:
    with db.connection() as conn:
        conn.execute(f"TRUNCATE {WHATSAPP_TABLES} RESTART IDENTITY")
    yield db
    with db.connection() as conn:
        conn.execute(f"TRUNCATE {WHATSAPP_TABLES} RESTART IDENTITY")


def test_50_tasks_writing_overlapping_keys_lose_nothing_and_never_deadlock(
    wa_db: Database, pg_url: str
) -> None:
    ids = [str(n) for n in range(40)]
    rng = random.Random(13)

    async def main() -> tuple[list[BaseException], dict[str, Any], dict[str, Any]]:
        async with AsyncDatabase(pg_url, Settings(max_connections=3, pool_timeout=30)) as db:
            store = AsyncAuthStateStore(db, "shared")

            async def writer(task: int) -> None:
                # Every task writes 20 overlapping ids in its own order, 5 rounds,
                # plus one id only it writes: a lost write would show.
                for round_ in range(5):
                    order = rng.sample(ids, 20)
                    data = {key_id: {"task": task, "round": round_} for key_id in order}
                    data[f"own-{task}"] = {"task": task, "round": round_}
                    await store.set_keys({"session": data, "pre-key": {str(task): {"n": task}}})

            results = await asyncio.gather(*(writer(t) for t in range(50)), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            keys = await store.get_keys("session", [*ids, *(f"own-{t}" for t in range(50))])
            pre_keys = await store.get_keys("pre-key", [str(t) for t in range(50)])
            return errors, keys, pre_keys

    with capture_events() as events:
        errors, keys, pre_keys = asyncio.run(asyncio.wait_for(main(), 120))
    assert errors == []
    assert events == []
    for task in range(50):
        assert keys[f"own-{task}"] == {"task": task, "round": 4}
        assert pre_keys[str(task)] == {"n": task}
    written = [key_id for key_id in ids if key_id in keys]
    assert written
    assert all(keys[key_id]["round"] in range(5) for key_id in written)
    # The sync store reads what the async one wrote.
    assert len(AuthStateStore(wa_db, "shared").get_keys("pre-key", range(50))) == 50


def test_a_cancelled_set_keys_sends_nothing_and_leaves_a_clean_connection(
    wa_db: Database, pg_url: str
) -> None:
    # Cancellation is not a failure: no event, CancelledError (here as the timeout's
    # TimeoutError) to the caller, the statement cancelled and the connection returned.
    async def main() -> None:
        async with AsyncDatabase(pg_url, Settings(max_connections=1)) as db:
            store = AsyncAuthStateStore(db, "locked")
            await store.set_keys({"session": {"1": {"v": 0}}})
            # Another session holds the row: set_keys waits on the lock, then is cancelled.
            with psycopg.connect(pg_url) as blocker_conn:
                blocker_conn.execute(
                    "SELECT 1 FROM whatsapp_keys WHERE session_id = 'locked' FOR UPDATE"
                )
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await store.set_keys({"session": {"1": {"v": 1}}})
                blocker_conn.rollback()
            # The one pool connection came back clean: the next calls succeed.
            await store.set_keys({"session": {"1": {"v": 2}}})
            assert await store.get_keys("session", ["1"]) == {"1": {"v": 2}}
            assert db.stats()["pool_available"] == 1

    with capture_events() as events:
        asyncio.run(main())
    assert events == []


def test_async_cleanup_deletes_and_is_recorded(wa_db: Database, pg_url: str) -> None:
    with wa_db.connection() as conn:
        conn.execute(
            """
            INSERT INTO whatsapp_keys (session_id, key_type, key_id, value, expires_at)
            SELECT 's', 'pre-key', n::text, '{}'::jsonb, now() - interval '1 hour'
            FROM generate_series(1, 25) AS n
            """
        )

    async def main() -> dict[str, Any]:
        async with AsyncDatabase(pg_url) as db:
            return dict(await cleanup_expired_keys_async(db, batch_size=10))

    result = asyncio.run(main())
    assert (result["deleted"], result["batches"]) == (25, 3)


def test_an_async_failure_is_reported_once_with_the_sync_boundary_names(pg_url: str) -> None:
    async def main() -> None:
        db = AsyncDatabase(pg_url, Settings(pool_timeout=0.5))
        await db.open()
        await db.close()
        await AsyncAuthStateStore(db, "closed").load_creds()

    with capture_events() as events, pytest.raises(DataLayerError):
        asyncio.run(main())
    assert [(e["tags"]["component"], e["tags"]["operation"]) for e in events] == [
        ("whatsapp", "load_creds")
    ]


def test_sync_and_async_twins_have_the_same_methods_and_signatures() -> None:
    import inspect

    from datalayer import whatsapp

    def public(cls: type[Any]) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    sync, async_ = public(AuthStateStore), public(AsyncAuthStateStore)
    assert (
        set(sync)
        == set(async_)
        == {
            "ttl_for",
            "load_creds",
            "save_creds",
            "get_keys",
            "set_keys",
            "clear",
            "check_session_health",
        }
    )
    for name in sync:
        assert str(sync[name]).replace("AsyncDatabase", "Database") == str(async_[name]), name
        coroutine = inspect.iscoroutinefunction(getattr(AsyncAuthStateStore, name))
        assert coroutine == (name != "ttl_for"), name
    for name in ("check_session_health", "cleanup_expired_keys"):
        sync_fn, async_fn = getattr(whatsapp, name), getattr(whatsapp, f"{name}_async")
        assert inspect.iscoroutinefunction(async_fn)
        assert str(inspect.signature(sync_fn)) == str(inspect.signature(async_fn)).replace(
            "AsyncDatabase", "Database"
        )
