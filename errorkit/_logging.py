"""structlog configuration: a processor chain you can read top to bottom."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO, cast

import structlog
from structlog._config import BoundLoggerLazyProxy
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from errorkit._scrub import scrub_for_log

LogFormat = Literal["json", "console"]
LogStream = Literal["stdout", "stderr"] | TextIO

_KEEP_ON_SCRUB_FAILURE = ("event", "level", "timestamp", "component", "operation")


def scrub_event_dict(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask personal data and secrets in every value of a log line.

    If masking itself fails the line is cut down to a few known-safe fields:
    a log line is never lost, and never sent unmasked.
    """
    try:
        return cast(EventDict, scrub_for_log(event_dict))
    except Exception as exc:
        kept: EventDict = {
            k: event_dict[k]
            for k in _KEEP_ON_SCRUB_FAILURE
            if k in event_dict and isinstance(event_dict[k], str | int | float)
        }
        kept["scrub_error"] = type(exc).__name__
        return kept


def base_processors(log_format: LogFormat = "json") -> list[Processor]:
    """Every processor of the production chain except the final renderer."""
    exceptions: Processor = (
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if log_format == "json"
        else structlog.processors.format_exc_info
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        exceptions,
        structlog.processors.UnicodeDecoder(),
        scrub_event_dict,
    ]


class _StreamPrintLoggerFactory:
    """A PrintLogger on the stream as it is when the line is written.

    Resolving "stdout"/"stderr" late keeps redirections (pytest's capture,
    contextlib.redirect_stdout) working.
    """

    def __init__(self, stream: LogStream) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        if self._stream == "stdout":
            return structlog.PrintLogger(sys.stdout)
        if self._stream == "stderr":
            return structlog.PrintLogger(sys.stderr)
        return structlog.PrintLogger(self._stream)


def _add_service(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_structlog(
    *,
    log_format: LogFormat = "json",
    level: int = logging.INFO,
    stream: LogStream = "stdout",
    service: str | None = None,
) -> None:
    """Install the production chain: JSON lines (or a console renderer) on ``stream``."""
    processors = base_processors(log_format)
    if service:
        processors.insert(1, _add_service(service))
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    route_stdlib_logging(processors, renderer, level=level, stream=stream)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
        logger_factory=_StreamPrintLoggerFactory(stream),
        # Not cached: errorkit.testing.capture_logs() reconfigures for a test's duration.
        cache_logger_on_first_use=False,
    )


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler setup() installs: stdlib records rendered by the same chain.

    Libraries log through ``logging`` (psycopg_pool's "error connecting", uvicorn,
    asyncio); through this handler their lines are JSON too, scrubbed and
    timestamped like errorkit's own, on the same stream.
    """

    def __init__(self, stream: LogStream) -> None:
        super().__init__()
        self._target = stream

    @property
    def stream(self) -> TextIO:
        # Resolved per record, like the structlog side, so redirections keep working.
        if self._target == "stdout":
            return sys.stdout
        if self._target == "stderr":
            return sys.stderr
        return self._target

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns sys.stderr; the target decides instead.


def _add_logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    return event_dict


def route_stdlib_logging(
    processors: list[Processor], renderer: Processor, *, level: int, stream: LogStream
) -> None:
    """Render stdlib ``logging`` records with the structlog chain, on the same stream.

    Replaces a handler installed by an earlier call; leaves other handlers alone.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(handler)
    handler = _StdlibHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_logger_name, *processors],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.addHandler(handler)
    root.setLevel(level)


def unroute_stdlib_logging() -> None:
    """Remove the handler ``route_stdlib_logging`` installed (tests use it)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(handler)


def get_logger(name: str | None = None, **initial_values: Any) -> FilteringBoundLogger:
    """Return a structlog logger; ``name`` is added to each line as ``logger``."""
    if name is not None:
        initial_values["logger"] = name
    # A lazy proxy (what structlog.get_logger returns), built directly because
    # get_logger's own `logger` parameter would swallow the "logger" key. Lazy, so
    # a module-level logger follows later configuration (setup(), capture_logs()).
    proxy = BoundLoggerLazyProxy(None, initial_values=initial_values, logger_factory_args=())
    return cast(FilteringBoundLogger, proxy)
