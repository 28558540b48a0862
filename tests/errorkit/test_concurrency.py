"""Boundaries under concurrency: shared boundary objects, tasks, threads, storms.

A module-level ``captured(...)`` reused by every handler is a natural pattern,
so one Boundary object must serve many tasks and threads at once; the chain of
enclosing boundaries and the request id must reach tasks (asyncio copies the
context) and threads (``errorkit.propagate``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import structlog

import errorkit
from errorkit import Block, captured, propagate
from errorkit.testing import capture_events, capture_logs, storm_control


class Boom(Exception):
    pass


SHARED = captured("jobs", "shared", reraise=False)


def test_one_boundary_entered_by_four_tasks_at_once() -> None:
    async def job(n: int, gate: asyncio.Event) -> Block:
        async with SHARED as block:
            await gate.wait()  # every task is inside the block at the same time
            if n % 2:
                raise Boom(f"job {n}")
        return block

    async def main() -> list[Block]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(job(n, gate)) for n in range(4)]
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    with capture_events() as events:
        blocks = asyncio.run(main())
    assert [b.error is None for b in blocks] == [True, False, True, False]
    assert [str(b.error) for b in blocks if b.error] == ["job 1", "job 3"]
    assert {b.event_id for b in blocks if b.error} == {e["event_id"] for e in events}
    assert len(events) == 2
    assert all(b.event_id is None for b in blocks if b.error is None)


def test_one_boundary_entered_by_eight_threads_at_once() -> None:
    barrier = threading.Barrier(8)
    blocks: dict[int, Block] = {}

    def job(n: int) -> None:
        with SHARED as block:
            barrier.wait()
            if n % 2:
                raise Boom(f"job {n}")
        blocks[n] = block

    with capture_events() as events:
        threads = [threading.Thread(target=job, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(blocks) == 8
    for n, block in blocks.items():
        assert (str(block.error) if block.error else None) == (f"job {n}" if n % 2 else None)
    assert len(events) == 4


def test_nested_entries_of_one_boundary_each_keep_their_own() -> None:
    with SHARED as outer, SHARED as inner:
        raise Boom("inner")
    assert isinstance(inner.error, Boom)
    assert outer.error is None
    assert SHARED.error is None  # the last block to finish: the outer one


def test_a_reporting_failure_never_breaks_a_shared_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from errorkit import _boundary

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("reporting bug")

    monkeypatch.setattr(_boundary, "report_failure", broken)
    monkeypatch.setattr(_boundary, "reported_event_id", broken)

    async def job() -> Block:
        async with SHARED as block:
            await asyncio.sleep(0)
            raise Boom("x")
        return block

    async def main() -> list[Block]:
        return await asyncio.gather(*(job() for _ in range(4)))

    blocks = asyncio.run(main())
    assert all(isinstance(b.error, Boom) and b.event_id is None for b in blocks)


# --- the chain crosses tasks and threads ---------------------------------------------------


@captured("jobs", "child")
async def child() -> None:
    await asyncio.sleep(0)
    raise Boom("child failed")


@captured("svc", "parent", reraise=False)
async def parent_with_task() -> None:
    async with captured("svc", "block"):
        await asyncio.create_task(child())


@captured("svc", "parent", reraise=False)
async def parent_with_task_group() -> None:
    async with captured("svc", "block"), asyncio.TaskGroup() as group:
        group.create_task(child())


@pytest.mark.parametrize("parent", [parent_with_task, parent_with_task_group])
def test_the_chain_crosses_create_task_and_task_groups(parent: Any) -> None:
    with capture_events() as events:
        structlog.contextvars.bind_contextvars(request_id="req-task")
        try:
            asyncio.run(parent())
        finally:
            structlog.contextvars.clear_contextvars()
    (event,) = events  # reported once, in the task; the parents add nothing
    context = event["contexts"]["errorkit"]
    assert context["boundaries"] == ["svc.parent", "svc.block", "jobs.child"]
    assert context["log_context"]["request_id"] == "req-task"


@captured("svc", "export")
def export_in_thread(use_propagate: bool) -> None:
    @captured("jobs", "render")
    def render() -> None:
        raise Boom("render failed")

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(propagate(render) if use_propagate else render)
        future.exception()


def test_propagate_carries_the_chain_and_request_id_into_a_thread() -> None:
    with capture_events() as events, capture_logs() as logs:
        structlog.contextvars.bind_contextvars(request_id="req-thread")
        try:
            with captured("http", "GET /export", reraise=False):
                export_in_thread(True)
                export_in_thread(False)
        finally:
            structlog.contextvars.clear_contextvars()
    carried, bare = events
    assert carried["contexts"]["errorkit"]["boundaries"] == [
        "http.GET /export",
        "svc.export",
        "jobs.render",
    ]
    assert carried["contexts"]["errorkit"]["log_context"]["request_id"] == "req-thread"
    # Without it the thread starts from an empty context: that is what propagate is for.
    assert bare["contexts"]["errorkit"]["boundaries"] == ["jobs.render"]
    assert "log_context" not in bare["contexts"]["errorkit"]
    failed = [line for line in logs if line["event"] == "operation_failed"]
    assert [line.get("request_id") for line in failed] == ["req-thread", None]


def test_propagate_into_run_in_executor_from_many_threads_at_once() -> None:
    seen: list[str | None] = []

    def read() -> None:
        seen.append(structlog.contextvars.get_contextvars().get("request_id"))

    async def main() -> None:
        structlog.contextvars.bind_contextvars(request_id="req-exec")
        loop = asyncio.get_running_loop()
        carried = propagate(read)
        with ThreadPoolExecutor(4) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, carried) for _ in range(20)))

    asyncio.run(main())
    assert seen == ["req-exec"] * 20


# --- storm control, scrubbing and exactly-once, concurrently -----------------------------


@captured("data-layer", "get_client", reraise=False)
async def get_client(phone: str) -> None:
    async with captured("repo", "find"):
        await asyncio.sleep(0)
        raise Boom(f"no route for +{phone}")


def test_eight_tasks_by_a_thousand_failures_add_up_exactly() -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    async def worker(n: int) -> None:
        for i in range(1000):
            await get_client(f"7968648{n}{i:03d}")

    async def main() -> None:
        await asyncio.gather(*(worker(n) for n in range(8)))

    with (
        capture_events() as events,
        capture_logs(level="info") as lines,
        storm_control(events_per_minute=10, log_lines_per_minute=60, clock=Clock()),
    ):
        asyncio.run(main())
        sent = [e for e in events if "exception" in e]
        errorkit.flush_suppressed()
    assert len(sent) == 10  # one minute of the clock: <= 10 events
    suppressed = sum(e["contexts"]["errorkit"]["suppressed"] for e in events)
    assert len(sent) + suppressed == 8000
    # Exactly once: the inner boundary reported each failure, the outer none.
    assert {e["tags"]["component"] for e in sent} == {"repo"}
    failed = [line for line in lines if line["event"] == "operation_failed"]
    held = sum(
        line["suppressed"] for line in lines if line["event"] == "operation_failures_suppressed"
    )
    assert len(failed) == 60
    assert len(failed) + held == 8000
    text = json.dumps(events, default=str) + json.dumps(lines, default=str)
    assert "7968648" not in text  # scrubbed in every event and line
