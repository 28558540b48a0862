"""The boundary: ``captured(...)`` as a decorator and as a context manager."""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar, Token
from time import perf_counter
from types import FrameType, TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import structlog
import wrapt

from errorkit._config import settings
from errorkit._report import (
    _REPORTED,
    WRAPPER_CODES,
    Failure,
    Node,
    _log_context,
    _mark,
    active,
    boundary_chain,
    enclosing_boundaries,
    line_fields,
    report_failure,
    report_rejection,
    reported_event_id,
    reraise_decision,
)

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")

Extra = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]
ReraisePolicy = bool | Callable[[Failure], bool]
#: ``observer(outcome, seconds)``: outcome ``"ok"``, ``"failed"`` or ``"rejected"``.
Observer = Callable[[str, float], None]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]

_log = structlog.get_logger("errorkit")


class Block:
    """One entry into a boundary used as a context manager: what ``as`` gives.

    ``with captured(...) as block:``: after the block, ``block.error`` is the
    exception the boundary met (or None) and ``block.event_id`` the Sentry
    event id (or None). Each entry has its own, so one boundary object may be
    entered by many tasks or threads at once (a module-level boundary reused in
    every handler).

    .. versionadded:: 0.2 (before, ``as`` gave the boundary itself)
    """

    __slots__ = (
        "_active_token",
        "_outer",
        "_own_token",
        "_parent",
        "_started",
        "boundary",
        "error",
        "event_id",
    )

    def __init__(self, boundary: Boundary, started: float) -> None:
        self.boundary = boundary
        self.error: Exception | None = None
        self.event_id: str | None = None
        self._started = started
        self._parent: Node | None = None
        self._outer: Block | None = None
        self._active_token: Token[Node | None] | None = None
        self._own_token: Token[Block | None] | None = None

    @property
    def component(self) -> str:
        """The boundary's component."""
        return self.boundary.component

    @property
    def operation(self) -> str:
        """The boundary's operation."""
        return self.boundary.operation

    def __repr__(self) -> str:
        state = "ok" if self.error is None else type(self.error).__name__
        return f"<Block {self.boundary.component}.{self.boundary.operation} {state}>"


# The innermost open Block of this context (task, thread): how __exit__ finds its
# own entry when the same Boundary object is open in several contexts at once.
_open_block: ContextVar[Block | None] = ContextVar("errorkit_open_block", default=None)


def _mark_group(group: BaseExceptionGroup[Any]) -> None:
    """A group (a TaskGroup's) whose every member was reported is that same incident."""
    ids: list[str] = []
    for member in group.exceptions:
        if isinstance(member, BaseExceptionGroup):
            _mark_group(member)
        event_id = reported_event_id(member)
        if event_id is None:
            return
        ids.append(event_id)
    if ids:
        _mark(group, _REPORTED, next((i for i in ids if i), ""))


def _restore(var: ContextVar[Any], token: Token[Any] | None, value: Any) -> None:
    """Reset ``var``; set it back to ``value`` if the token belongs to another context."""
    try:
        if token is not None:
            var.reset(token)
            return
    except ValueError:  # entered in one context, left in another (a moved generator...)
        pass
    var.set(value)


class Boundary:
    """One error boundary: a decorator for any function kind, and a context manager.

    Build it with :func:`captured`. Used as a context manager, each entry gets
    its own :class:`Block` (the ``as`` target), so one Boundary may be open in
    many tasks and threads at once. ``error`` and ``event_id`` on the Boundary
    itself repeat those of the block that finished last: meaningful for
    sequential use only.
    """

    __slots__ = (
        "_func",
        "_named",
        "_signature",
        "_takes_instance",
        "component",
        "default",
        "default_factory",
        "error",
        "event_id",
        "expected",
        "extra",
        "observer",
        "operation",
        "reraise",
        "slow_ms",
    )

    def __init__(
        self,
        component: str,
        operation: str | None = None,
        *,
        reraise: ReraisePolicy = True,
        default: Any = None,
        default_factory: Callable[[], Any] | None = None,
        expected: type[Exception] | tuple[type[Exception], ...] = (),
        extra: Extra | None = None,
        slow_ms: float | None = None,
        observer: Observer | None = None,
    ) -> None:
        if not component:
            raise ValueError("captured(): component must be a non-empty string")
        if default is not None and default_factory is not None:
            raise ValueError("captured(): give default or default_factory, not both")
        self.component = component
        self._named = bool(operation)
        self.operation = operation or "block"
        self.reraise = reraise
        self.default = default
        self.default_factory = default_factory
        self.expected = expected if isinstance(expected, tuple) else (expected,)
        self.extra = extra
        self.slow_ms = slow_ms
        self.error: Exception | None = None
        self.event_id: str | None = None
        self._func: Callable[..., Any] | None = None
        self._signature: inspect.Signature | None = None
        self._takes_instance = False
        self.observer = observer
        if observer is not None and type(self) is Boundary:
            # Only observed boundaries pay for the observer: the others keep the
            # success path exactly as it is (see _Observed).
            self.__class__ = _Observed

    def __repr__(self) -> str:
        return f"<Boundary {self.component}.{self.operation}>"

    # --- shared by every path ---------------------------------------------------------------

    def _failed(
        self,
        exc: Exception,
        started: float,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> bool:
        """Report ``exc`` (or not, if already reported); return True to re-raise it."""
        duration_ms = (perf_counter() - started) * 1000.0
        event_id: str | None = None
        reported = False
        try:
            if isinstance(exc, BaseExceptionGroup):
                _mark_group(exc)
            if self.expected and isinstance(exc, self.expected):
                report_rejection(self, exc, duration_ms)
                return True
            event_id, reported = report_failure(self, exc, duration_ms, instance, args, kwargs)
        except Exception:  # reporting can never break the caller
            pass
        return reraise_decision(self, exc, instance, event_id, duration_ms, reported)

    def _default(self) -> Any:
        factory = self.default_factory
        return factory() if factory is not None else self.default

    def _finished(self, started: float) -> None:
        """Success bookkeeping, shared by every path: nothing is built unless a line is due."""
        elapsed_ms = (perf_counter() - started) * 1000.0
        slow_ms = settings.slow_ms if self.slow_ms is None else self.slow_ms
        # slow_ms 0 turns the warning off (docs/error-handling.md), it is not "always slow".
        if settings.debug or (slow_ms and elapsed_ms >= slow_ms):
            self._succeeded(elapsed_ms, slow_ms)

    def _succeeded(self, duration_ms: float, slow_ms: float) -> None:
        try:
            if slow_ms and duration_ms >= slow_ms:
                _log.warning(
                    "operation_slow",
                    **line_fields(self, duration_ms),
                    slow_ms=slow_ms,
                )
            else:
                _log.debug(
                    "operation_completed",
                    **line_fields(self, duration_ms),
                )
        except Exception:
            pass

    # --- decorator ----------------------------------------------------------------------------

    def __call__(self, func: F) -> F:
        target = getattr(func, "__func__", func)  # classmethod / staticmethod objects
        boundary = self._for(func, target)
        if inspect.isasyncgenfunction(target):
            wrapper: Callable[..., Any] = boundary._call_async_gen
        elif inspect.iscoroutinefunction(target):
            wrapper = boundary._call_async
        elif inspect.isgeneratorfunction(target):
            wrapper = boundary._call_gen
        else:
            wrapper = boundary._call_sync
        return cast(F, wrapt.FunctionWrapper(func, wrapper))

    def _for(self, func: Any, target: Callable[..., Any]) -> Boundary:
        """A boundary of its own for one decorated function (the operation defaults to its name)."""
        clone = Boundary(
            self.component,
            self.operation if self._named else getattr(target, "__name__", "call"),
            reraise=self.reraise,
            default=self.default,
            default_factory=self.default_factory,
            expected=self.expected,
            extra=self.extra,
            slow_ms=self.slow_ms,
            observer=self.observer,
        )
        clone._func = target
        clone._takes_instance = not isinstance(func, staticmethod)
        return clone

    def _call_sync(
        self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        started = perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except Exception as exc:
            __tracebackhide__ = True  # Sentry and pytest leave this wrapper frame out
            if self._failed(exc, started, instance, args, kwargs):
                raise
            return self._default()
        self._finished(started)
        return result

    async def _call_async(
        self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> Any:
        started = perf_counter()
        # Recorded in the context (unlike the sync paths, found on the stack): a task
        # this coroutine starts copies the context, so its failures name this boundary.
        parent = active.get()
        token = active.set((self, parent, sys._getframe()))
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            __tracebackhide__ = True
            if self._failed(exc, started, instance, args, kwargs):
                raise
            return self._default()
        finally:
            _restore(active, token, parent)
        self._finished(started)
        return result

    def _call_gen(
        self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> Generator[Any, Any, Any]:
        started = perf_counter()
        try:
            result = yield from wrapped(*args, **kwargs)
        except Exception as exc:
            __tracebackhide__ = True
            if self._failed(exc, started, instance, args, kwargs):
                raise
            return self._default()
        self._finished(started)
        return result

    async def _call_async_gen(
        self, wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs
    ) -> AsyncGenerator[Any, Any]:
        # No `yield from` for async generators: drive it, forwarding asend/athrow/aclose.
        started = perf_counter()
        try:
            agen = wrapped(*args, **kwargs)
        except Exception as exc:
            __tracebackhide__ = True
            if self._failed(exc, started, instance, args, kwargs):
                raise
            return
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            try:
                if to_throw is not None:
                    thrown, to_throw = to_throw, None
                    value = await agen.athrow(thrown)
                else:
                    value = await agen.asend(to_send)
            except StopAsyncIteration:
                self._finished(started)
                return
            except Exception as exc:
                __tracebackhide__ = True
                if self._failed(exc, started, instance, args, kwargs):
                    raise
                return
            try:
                to_send = yield value
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as thrown_in:
                to_throw = thrown_in

    # --- context manager ------------------------------------------------------------------------

    def __enter__(self) -> Block:
        return self._enter(sys._getframe(1))

    def _enter(self, frame: FrameType) -> Block:
        block = Block(self, perf_counter())
        block._parent = parent = active.get()
        block._active_token = active.set((self, parent, frame))
        block._outer = _open_block.get()
        block._own_token = _open_block.set(block)
        return block

    def _entry(self) -> Block:
        """The Block this context entered last on this boundary (what ``__exit__`` closes)."""
        block = _open_block.get()
        while block is not None and block.boundary is not self:
            block = block._outer
        if block is None:
            # Left in a context that never entered it (a generator moved between
            # tasks): no state of its own to restore, the report still goes out.
            block = Block(self, perf_counter())
            block._parent = active.get()
            block._outer = _open_block.get()
        return block

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        block = self._entry()
        try:
            if exc is None:
                self._finished(block._started)
                suppress = False
            elif not isinstance(exc, Exception):
                suppress = False
            else:
                block.error = exc
                suppress = not self._failed(exc, block._started, None, (), {})
                try:
                    block.event_id = reported_event_id(exc) or None
                except Exception:  # reporting can never break the caller
                    block.event_id = None
        finally:
            _restore(_open_block, block._own_token, block._outer)
            _restore(active, block._active_token, block._parent)
        self.error, self.event_id = block.error, block.event_id
        return suppress

    async def __aenter__(self) -> Block:
        return self._enter(sys._getframe(1))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)


class _Observed(Boundary):
    """A boundary with an ``observer``, told the outcome and duration of every call.

    A subclass rather than a test in the shared methods, so that a boundary without
    an observer runs exactly the code it ran before observers existed.
    """

    __slots__ = ()

    def _finished(self, started: float) -> None:
        _observe(self.observer, "ok", started)
        Boundary._finished(self, started)

    def _failed(
        self,
        exc: Exception,
        started: float,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> bool:
        outcome = "rejected" if self.expected and isinstance(exc, self.expected) else "failed"
        _observe(self.observer, outcome, started)
        return Boundary._failed(self, exc, started, instance, args, kwargs)


def _observe(observer: Observer | None, outcome: str, started: float) -> None:
    if observer is not None:
        # try/except, not contextlib.suppress: this runs on every observed call.
        try:  # noqa: SIM105
            observer(outcome, perf_counter() - started)
        except Exception:  # an observer can never break the caller
            pass


def captured(
    component: str,
    operation: str | None = None,
    *,
    reraise: ReraisePolicy = True,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    expected: type[Exception] | tuple[type[Exception], ...] = (),
    extra: Extra | None = None,
    slow_ms: float | None = None,
    observer: Observer | None = None,
) -> Boundary:
    """An error boundary named ``component`` / ``operation``.

    Decorate a function (sync, async, method, classmethod, staticmethod,
    generator, async generator; ``operation`` defaults to its name), or use it
    as ``with captured(...) as block:`` (then ``block.error`` and
    ``block.event_id`` describe that block; each entry has its own
    :class:`Block`, so one boundary may be shared by tasks and threads)::

        @captured("data-layer", reraise=False, default_factory=list)
        def get_staff(company_id: int) -> list[Staff]: ...

    On an ``Exception`` the innermost boundary sends one Sentry event and one
    ``operation_failed`` line (outer boundaries report nothing new), then
    applies the policy:

    - ``reraise``: True re-raises; False returns ``default_factory()`` if
      given, else ``default``; a callable given the :class:`Failure` decides
      at failure time.
    - ``expected``: exception types that are normal outcomes: an
      ``operation_rejected`` warning, no event, always re-raised.
    - ``extra``: a mapping added to the captured arguments, or a callable of
      the bound arguments returning the mapping to report instead.
    - ``slow_ms``: overrides ``ERRORKIT_SLOW_MS`` for the ``operation_slow``
      warning on success.
    - ``observer``: called as ``observer(outcome, seconds)`` after every call
      (``"ok"``, ``"failed"`` or ``"rejected"``), for metrics such as a
      duration histogram; its errors are ignored. Without one the success
      path does no extra work.

    ``BaseException``s such as ``KeyboardInterrupt`` pass through untouched.
    """
    return Boundary(
        component,
        operation,
        reraise=reraise,
        default=default,
        default_factory=default_factory,
        expected=expected,
        extra=extra,
        slow_ms=slow_ms,
        observer=observer,
    )


# _call_async is not listed: it records itself in `active`, at its own frame.
WRAPPER_CODES.update(
    {
        Boundary._call_sync.__code__,
        Boundary._call_gen.__code__,
        Boundary._call_async_gen.__code__,
    }
)


# --- carrying the boundary context into threads ---------------------------------------------


def boundary_on_stack() -> bool:
    """True when a boundary on the running stack will meet an exception raised here.

    False in a task or thread started inside a boundary (a request) whose own
    code has none: the enclosing boundaries are in its context, not its stack.
    """
    frames: set[int] = set()
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None and depth < 1000:
        if frame.f_code in WRAPPER_CODES:
            return True
        frames.add(id(frame))
        frame = frame.f_back
        depth += 1
    node = active.get()
    while node is not None:
        if node[2] is not None and id(node[2]) in frames:
            return True
        node = node[1]
    return False


def adopt_unhandled(event: dict[str, Any], exc: Exception) -> None:
    """Make a framework integration's event the one report of ``exc``, raised in a task
    or thread whose enclosing boundaries (and request id) are in its context only."""
    if active.get() is None:
        return
    _mark(exc, _REPORTED, str(event.get("event_id") or ""))
    context: dict[str, Any] = {"boundaries": boundary_chain(), "suppressed": 0, "arguments": {}}
    log_context = _log_context()
    if log_context:
        context["log_context"] = log_context
    event.setdefault("contexts", {})["errorkit"] = context


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to the caller's context, to run in another thread.

    A thread (``threading.Thread``, ``ThreadPoolExecutor.submit``,
    ``loop.run_in_executor``) starts with an empty context; wrapped by
    ``propagate``, ``fn`` runs in a copy of the context it was wrapped in: the
    chain of enclosing boundaries (a failure in it names them), the request id
    and whatever else is bound with structlog's contextvars, the Sentry scope::

        await loop.run_in_executor(None, errorkit.propagate(render_pdf), booking)
        pool.submit(errorkit.propagate(send_sms), phone)

    Each call runs in its own copy, so the result may be called from many
    threads at once. Tasks need nothing: asyncio copies the context into
    every task (``create_task``, ``TaskGroup``, ``gather``) and into
    ``asyncio.to_thread``.

    .. versionadded:: 0.2
    """
    context = contextvars.copy_context()
    # Decorated sync boundaries live on the stack, not in the context: record them.
    enclosing = enclosing_boundaries(sys._getframe(1))
    if enclosing:

        def record() -> None:
            node: Node | None = None
            for boundary in reversed(enclosing):
                node = (boundary, node, None)
            active.set(node)

        context.run(record)

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return in_context
