"""The boundary: ``captured(...)`` as a decorator and as a context manager."""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import Token
from time import perf_counter
from types import FrameType, TracebackType
from typing import Any, TypeVar, cast

import structlog
import wrapt

from errorkit._config import settings
from errorkit._report import (
    WRAPPER_CODES,
    Failure,
    Node,
    active,
    line_fields,
    report_failure,
    report_rejection,
    reported_event_id,
    reraise_decision,
)

F = TypeVar("F", bound=Callable[..., Any])

Extra = Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]
ReraisePolicy = bool | Callable[[Failure], bool]
#: ``observer(outcome, seconds)``: outcome ``"ok"``, ``"failed"`` or ``"rejected"``.
Observer = Callable[[str, float], None]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]

_log = structlog.get_logger("errorkit")


class Boundary:
    """One error boundary: a decorator for any function kind, and a context manager.

    Build it with :func:`captured`. Used as a context manager, ``error`` and
    ``event_id`` describe the block's failure afterwards (a Boundary instance
    used as a context manager is for one block at a time).
    """

    __slots__ = (
        "_cm",
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
        self._cm: list[tuple[float, Token[Node | None]]] = []
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
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            __tracebackhide__ = True
            if self._failed(exc, started, instance, args, kwargs):
                raise
            return self._default()
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

    def __enter__(self) -> Boundary:
        return self._enter(sys._getframe(1))

    def _enter(self, frame: FrameType) -> Boundary:
        self.error = None
        self.event_id = None
        self._cm.append((perf_counter(), active.set((self, active.get(), frame))))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        started, token = self._cm.pop()
        try:
            if exc is None:
                self._finished(started)
                return False
            if not isinstance(exc, Exception):
                return False
            self.error = exc
            reraise = self._failed(exc, started, None, (), {})
            self.event_id = reported_event_id(exc) or None
            return not reraise
        finally:
            active.reset(token)

    async def __aenter__(self) -> Boundary:
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
    as ``with captured(...) as boundary:`` (then ``boundary.error`` and
    ``boundary.event_id`` describe the block)::

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


WRAPPER_CODES.update(
    {
        Boundary._call_sync.__code__,
        Boundary._call_async.__code__,
        Boundary._call_gen.__code__,
        Boundary._call_async_gen.__code__,
    }
)
