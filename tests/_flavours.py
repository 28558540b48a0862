"""Run the sync suites against the async classes too: one test, two flavours.

The facade, repository, transaction and failure-policy tests are written once,
in sync form. In the ``async`` flavour their ``Database``, ``DataLayer`` and
repository names are swapped (for that test only) for factories of the async
classes behind :class:`Blocking`, a proxy that runs each awaitable on one event
loop in a background thread and hands back the result. So every assertion runs
against ``AsyncDatabase`` / ``AsyncDataLayer`` / ``Async*Repository`` on the
real server, and nothing is copied.

Two details make it honest rather than approximate:

- each calling thread keeps one ``contextvars.Context`` for all its calls, so a
  transaction opened by one call is seen by the next (as in one task);
- a callable handed to ``run_in_transaction`` runs in a greenlet inside the
  awaiting task, so the proxy calls it makes are awaited in that very task
  (in its transaction), not on another loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
from greenlet import getcurrent, greenlet

import datalayer
from datalayer import repositories, whatsapp

#: The names a test module may use, and their async twins.
ASYNC_TWINS: dict[str, Any] = {
    "Database": datalayer.AsyncDatabase,
    "DataLayer": datalayer.AsyncDataLayer,
    "AuthStateStore": whatsapp.AsyncAuthStateStore,
    "check_session_health": whatsapp.check_session_health_async,
    "cleanup_expired_keys": whatsapp.cleanup_expired_keys_async,
    **{
        name: getattr(repositories, f"Async{name}")
        for name in repositories.__all__
        if not name.startswith(("Async", "Table"))
    },
}


class _Bridged(greenlet):  # type: ignore[misc]
    """A greenlet whose awaits are done by the task that started it."""


async def _in_greenlet(fn: Callable[[], Any]) -> Any:
    child = _Bridged(fn)
    request = child.switch()
    while not child.dead:
        try:
            value = await request
        except BaseException as exc:
            request = child.throw(exc)
        else:
            request = child.switch(value)
    return request


class Loop:
    """One event loop in a daemon thread; ``run(awaitable)`` blocks for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="async-flavour", daemon=True
        )
        self.thread.start()
        self._contexts = threading.local()
        self.faces: dict[int, Blocking] = {}

    def run(self, awaitable: Awaitable[Any]) -> Any:
        current = getcurrent()
        if isinstance(current, _Bridged):
            # Called from a callback running inside a task: let that task await it.
            return current.parent.switch(awaitable)
        if threading.current_thread() is self.thread:
            raise RuntimeError("a blocking call on the event loop's own thread")
        context = self.context()
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def main() -> Any:
            return await awaitable

        def start() -> None:
            task = self.loop.create_task(main(), context=context)

            def done(task: asyncio.Task[Any]) -> None:
                if task.cancelled():
                    result.set_exception(asyncio.CancelledError())
                elif task.exception() is not None:
                    result.set_exception(task.exception())  # type: ignore[arg-type]
                else:
                    result.set_result(task.result())

            task.add_done_callback(done)

        self.loop.call_soon_threadsafe(start)
        return result.result()

    def context(self) -> contextvars.Context:
        """The calling thread's context: every call it makes runs in this one."""
        context = getattr(self._contexts, "context", None)
        if context is None:
            context = self._contexts.context = contextvars.copy_context()
        return context

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _wrap(value: Any, loop: Loop) -> Any:
    if isinstance(value, Blocking):
        return value
    if isinstance(value, psycopg.AsyncConnection):
        # One face per connection, so ``inner is conn`` holds as it does in sync code.
        face = loop.faces.get(id(value))
        if face is None or face._target is not value:
            face = loop.faces[id(value)] = Blocking(value, loop)
        return face
    kind = type(value)
    if kind.__name__.startswith("_Async") or kind.__name__.startswith("Async"):
        return Blocking(value, loop)
    if isinstance(value, psycopg.AsyncConnection | psycopg.AsyncCursor | psycopg.AsyncCopy):
        return Blocking(value, loop)
    if hasattr(value, "__aenter__") and not hasattr(value, "__enter__"):
        return Blocking(value, loop)
    return value


def _unwrap(value: Any) -> Any:
    return value._target if isinstance(value, Blocking) else value


class Blocking:
    """A blocking face of an async object: awaitables are run, results wrapped again."""

    __slots__ = ("_loop", "_target")

    def __init__(self, target: Any, loop: Loop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return _wrap(value, self._loop)
        loop = self._loop

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_unwrap(a) for a in args)
            if name == "run_in_transaction":
                fn = args[0]
                args = (lambda: _in_greenlet(fn), *args[1:])
            if isinstance(getcurrent(), _Bridged):
                result = value(*args, **kwargs)  # already inside the task's context
            else:
                result = loop.context().run(value, *args, **kwargs)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = loop.run(result)
            return _wrap(result, loop)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __enter__(self) -> Any:
        return _wrap(self._loop.run(self._target.__aenter__()), self._loop)

    def __exit__(self, *exc_info: Any) -> Any:
        return self._loop.run(self._target.__aexit__(*exc_info))

    def __iter__(self) -> Iterator[Any]:
        iterator = self._target.__aiter__()
        while True:
            try:
                yield _wrap(self._loop.run(iterator.__anext__()), self._loop)
            except StopAsyncIteration:
                return

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


class Twin:
    """What a test module's ``Database`` / ``DataLayer`` / repository name becomes in the
    async flavour: calling it builds the async class (opened on the loop) behind
    :class:`Blocking`; its attributes are the async class's (for introspection)."""

    def __init__(self, cls: type[Any], loop: Loop) -> None:
        self.cls = cls
        self.loop = loop
        self.__name__ = cls.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cls = self.cls

        async def make() -> Any:
            # Built inside the loop: psycopg_pool's async pool wants a running loop.
            instance = cls(
                *(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()}
            )
            if isinstance(instance, datalayer.AsyncDatabase):
                await instance.open()
            return instance

        return Blocking(self.loop.run(make()), self.loop)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cls, name)


class FunctionTwin:
    """What a module-level ``x`` becomes in the async flavour: ``x_async``, awaited on the
    loop (in the calling thread's context), its result wrapped like a method's."""

    def __init__(self, fn: Callable[..., Awaitable[Any]], loop: Loop) -> None:
        self.fn = fn
        self.loop = loop
        self.__name__ = fn.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        if isinstance(getcurrent(), _Bridged):
            coroutine = self.fn(*args, **kwargs)
        else:
            coroutine = self.loop.context().run(self.fn, *args, **kwargs)
        return _wrap(self.loop.run(coroutine), self.loop)


def factory(cls: Any, loop: Loop) -> Twin | FunctionTwin:
    """The async flavour's stand-in for the sync class (or ``_async`` function) named
    like ``cls`` without Async."""
    if isinstance(cls, type):
        return Twin(cls, loop)
    return FunctionTwin(cls, loop)
