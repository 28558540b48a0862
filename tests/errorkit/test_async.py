"""The boundary around coroutines, generators and async generators."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from errorkit import captured


class Boom(Exception):
    pass


def test_coroutine_function_reports_and_keeps_metadata(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    @captured("worker", "fetch")
    async def fetch(url: str, *, retries: int = 2) -> str:
        """Fetch a thing."""
        await asyncio.sleep(0)
        raise Boom(url)

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch a thing."
    assert list(inspect.signature(fetch).parameters) == ["url", "retries"]
    with pytest.raises(Boom):
        asyncio.run(fetch("http://x"))
    (event,) = errorkit_events
    assert event["tags"]["operation"] == "fetch"
    assert event["contexts"]["errorkit"]["arguments"] == {"url": "'http://x'"}
    assert [line["event"] for line in errorkit_logs] == ["operation_failed"]


def test_coroutine_default_and_success() -> None:
    @captured("worker", reraise=False, default_factory=dict)
    async def maybe(fail: bool) -> dict[str, int]:
        if fail:
            raise Boom
        return {"ok": 1}

    assert asyncio.run(maybe(False)) == {"ok": 1}
    assert asyncio.run(maybe(True)) == {}


def test_async_methods_report_with_their_names(errorkit_events: list[dict[str, Any]]) -> None:
    class Client:
        @captured("client")
        async def get(self, key: str) -> None:
            raise Boom(key)

        @captured("client")
        @classmethod
        async def make(cls) -> None:
            raise Boom

        @captured("client")
        @staticmethod
        async def helper() -> None:
            raise Boom

    async def main() -> None:
        for call in (Client().get("k"), Client.make(), Client.helper()):
            with pytest.raises(Boom):
                await call

    asyncio.run(main())
    assert [e["tags"]["operation"] for e in errorkit_events] == ["get", "make", "helper"]
    assert errorkit_events[0]["contexts"]["errorkit"]["arguments"] == {"key": "'k'"}


def test_cancelled_error_propagates_without_a_report(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    @captured("worker", reraise=False, default="swallowed")
    async def slow() -> str:
        await asyncio.sleep(10)
        return "done"

    async def main() -> None:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())

    async def in_block() -> None:
        async with captured("worker", "block", reraise=False):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(in_block())
    assert errorkit_events == []
    assert [line for line in errorkit_logs if line["level"] != "debug"] == []


def test_async_context_manager(errorkit_events: list[dict[str, Any]]) -> None:
    async def main() -> Any:
        async with captured("jobs", "tick", reraise=False) as boundary:
            await asyncio.sleep(0)
            raise Boom("tick")
        return boundary

    boundary = asyncio.run(main())
    assert isinstance(boundary.error, Boom)
    assert boundary.event_id == errorkit_events[0]["event_id"]


def test_nested_async_boundaries_report_once_with_chain(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("db", "query")
    async def query() -> None:
        await asyncio.sleep(0)
        raise Boom

    @captured("svc", "load")
    async def load() -> None:
        await query()

    async def main() -> None:
        async with captured("http", "GET /x", reraise=False):
            # gather runs query in child tasks that copy the context: the chain survives.
            await asyncio.gather(load())

    asyncio.run(main())
    (event,) = errorkit_events
    assert event["contexts"]["errorkit"]["boundaries"] == ["http.GET /x", "svc.load", "db.query"]


def test_generator_errors_while_iterating_are_caught(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("export", "rows")
    def rows(n: int) -> Iterator[int]:
        yield from range(n)
        raise Boom("after rows")

    assert inspect.isgeneratorfunction(rows)
    out: list[int] = []
    with pytest.raises(Boom):
        out.extend(rows(3))
    assert out == [0, 1, 2]
    (event,) = errorkit_events
    assert event["tags"]["operation"] == "rows"
    assert event["contexts"]["errorkit"]["arguments"] == {"n": "3"}


def test_generator_reraise_false_stops_iteration_and_send_throw_close_work() -> None:
    @captured("export", reraise=False)
    def echo() -> Iterator[Any]:
        received = yield "ready"
        while True:
            try:
                received = yield received * 2
            except KeyError:
                received = "thrown"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(2) == 4
    assert gen.throw(KeyError("k")) == "thrownthrown"
    gen.close()

    @captured("export", reraise=False)
    def failing() -> Iterator[int]:
        yield 1
        raise Boom

    assert list(failing()) == [1]


def test_generator_close_is_not_a_failure(errorkit_events: list[dict[str, Any]]) -> None:
    closed: list[bool] = []

    @captured("export")
    def endless() -> Iterator[int]:
        try:
            while True:
                yield 1
        finally:
            closed.append(True)

    gen = endless()
    next(gen)
    gen.close()
    assert closed == [True]
    assert errorkit_events == []


def test_generator_method(errorkit_events: list[dict[str, Any]]) -> None:
    class Exporter:
        @captured("export")
        def batches(self) -> Iterator[int]:
            yield 1
            raise Boom

    with pytest.raises(Boom):
        list(Exporter().batches())
    assert errorkit_events[0]["tags"]["operation"] == "batches"


def test_async_generator_errors_while_iterating_are_caught(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("stream", "events")
    async def events(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
        raise Boom("stream broke")

    assert inspect.isasyncgenfunction(events)

    async def main() -> list[int]:
        return [i async for i in events(2)]

    with pytest.raises(Boom):
        asyncio.run(main())
    (event,) = errorkit_events
    assert event["tags"]["operation"] == "events"


def test_async_generator_reraise_false_and_asend_athrow_aclose() -> None:
    @captured("stream", reraise=False)
    async def echo() -> AsyncIterator[Any]:
        received = yield "ready"
        while True:
            try:
                received = yield received * 2
            except KeyError:
                received = "thrown"

    @captured("stream", reraise=False)
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise Boom

    async def main() -> None:
        agen = echo()
        assert await agen.__anext__() == "ready"
        assert await agen.asend(3) == 6
        assert await agen.athrow(KeyError("k")) == "thrownthrown"
        await agen.aclose()
        assert [i async for i in failing()] == [1]

    asyncio.run(main())


def _plain(a: int, *, b: str = "x") -> int:
    """plain doc"""
    return a


async def _coroutine(a: int, *, b: str = "x") -> int:
    """coroutine doc"""
    return a


def _generator(a: int, *, b: str = "x") -> Iterator[int]:
    """generator doc"""
    yield a


async def _async_generator(a: int, *, b: str = "x") -> AsyncIterator[int]:
    """async generator doc"""
    yield a


@pytest.mark.parametrize("func", [_plain, _coroutine, _generator, _async_generator])
def test_every_function_kind_keeps_its_metadata(func: Any) -> None:
    decorated = captured("kinds")(func)
    assert decorated.__name__ == func.__name__
    assert decorated.__doc__ == func.__doc__
    assert decorated.__wrapped__ is func
    assert inspect.signature(decorated) == inspect.signature(func)
    assert inspect.iscoroutinefunction(decorated) == inspect.iscoroutinefunction(func)
    assert inspect.isgeneratorfunction(decorated) == inspect.isgeneratorfunction(func)
    assert inspect.isasyncgenfunction(decorated) == inspect.isasyncgenfunction(func)
