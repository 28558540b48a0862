"""``errorkit logs summary``: failures, rejections and slow calls counted from log lines.

Failures are counted exactly, storm control included: each ``operation_failed``
line is one failure, and each ``operation_failures_suppressed`` line carries the
number held back (``suppressed``), so ``count`` is their sum. Durations are
summarised in a bounded sketch (p50 and p95 within 1 %, max exact), so memory
does not grow with the input.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DurationSketch", "Summary", "summarize"]

FAILED = "operation_failed"
SUPPRESSED = "operation_failures_suppressed"
REJECTED = "operation_rejected"
SLOW = "operation_slow"

_RELATIVE_ERROR = 0.01
_GAMMA = (1 + _RELATIVE_ERROR) / (1 - _RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
_REQUEST_IDS_KEPT = 5
# raw_decode on the decoded text skips what json.loads adds per call (encoding
# detection on bytes, a whitespace regex at both ends): a quarter of the time per line.
_raw_decode = json.JSONDecoder().raw_decode
_JSON_BLANKS = " \t\n\r"


class DurationSketch:
    """Quantiles of positive numbers in logarithmic buckets (relative error 1 %).

    Its size is bounded by the range of the values, not their number: about 115
    buckets per factor of 10.
    """

    __slots__ = ("buckets", "count", "maximum", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.zeros = 0
        self.maximum: float | None = None

    def add(self, value: float) -> None:
        self.count += 1
        if self.maximum is None or value > self.maximum:
            self.maximum = value
        if value <= 0:
            self.zeros += 1
            return
        index = math.ceil(math.log(value) / _LOG_GAMMA)
        self.buckets[index] = self.buckets.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The value at rank ``ceil(q * count)`` (nearest rank), within 1 %."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                estimate = 2 * _GAMMA**index / (_GAMMA + 1)
                # The estimate never exceeds the largest value seen.
                return min(estimate, self.maximum) if self.maximum is not None else estimate
        return self.maximum

    def as_dict(self) -> dict[str, float | None]:
        return {
            "p50_ms": _rounded(self.quantile(0.5)),
            "p95_ms": _rounded(self.quantile(0.95)),
            "max_ms": _rounded(self.maximum),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(value: Any) -> float | None:
    if type(value) is float or type(value) is int:
        return float(value)
    return None


@dataclass
class _Group:
    """One (component, operation[, error kind]) of one section."""

    count: int = 0
    suppressed: int = 0
    durations: DurationSketch = field(default_factory=DurationSketch)
    error_types: dict[str, int] = field(default_factory=dict)
    first_seen: str | None = None
    last_seen: str | None = None
    last_error_message: str | None = None
    request_ids: deque[str] = field(default_factory=lambda: deque(maxlen=_REQUEST_IDS_KEPT))

    def saw(self, record: dict[str, Any]) -> None:
        stamp = record.get("timestamp")
        if type(stamp) is str:
            if self.first_seen is None:
                self.first_seen = stamp
            self.last_seen = stamp
        duration = _number(record.get("duration_ms"))
        if duration is not None:
            self.durations.add(duration)
        request_id = record.get("request_id")
        if type(request_id) is str and request_id not in self.request_ids:
            self.request_ids.append(request_id)


def _text(value: Any) -> str:
    return value if type(value) is str else "?"


class Summary:
    """What a run of log lines says about failures, rejections and slow calls.

    Feed it with :meth:`add` (one raw line at a time) and read :meth:`as_dict`.
    ``keep`` decides which of our records count (the ``--since`` / ``--until``
    filters); those left out are counted as ``filtered``.
    """

    def __init__(self, keep: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.keep = keep
        self.lines = 0
        self.unparsed = 0
        self.filtered = 0
        self.first_timestamp: str | None = None
        self.last_timestamp: str | None = None
        self.failures: dict[tuple[str, str, str], _Group] = {}
        self.rejections: dict[tuple[str, str, str], _Group] = {}
        self.slow: dict[tuple[str, str], _Group] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            FAILED: self._failed,
            SUPPRESSED: self._suppressed,
            REJECTED: self._rejected,
            SLOW: self._slow,
        }

    def add(self, raw: bytes | str) -> None:
        """Count one log line (blank lines are ignored)."""
        self.consume((raw,))

    def consume(self, lines: Iterable[bytes | str]) -> None:
        """Count every line of ``lines``, streaming (blank lines are ignored).

        The loop is :func:`~errorkit._logs.parse_line` inlined, with its state in
        locals: it runs once per line, and a log can hold millions.
        """
        loads, raw_decode = json.loads, _raw_decode
        handlers = self._handlers
        keep = self.keep
        read = unparsed = filtered = 0
        first, last = self.first_timestamp, self.last_timestamp
        try:
            for raw in lines:
                try:
                    text = raw.decode() if isinstance(raw, bytes) else raw
                    record, end = raw_decode(text)
                    if end != len(text) and text[end:].strip(_JSON_BLANKS):
                        raise ValueError("extra data after the JSON value")
                except (ValueError, RecursionError):  # not JSON, or not UTF-8
                    try:  # json.loads decides (leading blanks, other encodings): rare
                        record = loads(raw)
                    except (ValueError, RecursionError):
                        if raw.strip():
                            read += 1
                            unparsed += 1
                        continue
                read += 1
                if type(record) is not dict:
                    unparsed += 1
                    continue
                event = record.get("event")
                if type(event) is not str:
                    unparsed += 1
                    continue
                if keep is not None and not keep(record):
                    filtered += 1
                    continue
                stamp = record.get("timestamp")
                if type(stamp) is str:
                    if first is None or stamp < first:
                        first = stamp
                    if last is None or stamp > last:
                        last = stamp
                handler = handlers.get(event)
                if handler is not None:
                    handler(record)
        finally:  # an input failing part way still counts what was read
            self.lines += read
            self.unparsed += unparsed
            self.filtered += filtered
            self.first_timestamp, self.last_timestamp = first, last

    # --- one handler per event ---------------------------------------------------------

    def _failure_group(self, record: dict[str, Any]) -> _Group:
        key = (
            _text(record.get("component")),
            _text(record.get("operation")),
            _text(record.get("error_kind")),
        )
        group = self.failures.get(key)
        if group is None:
            group = self.failures[key] = _Group()
        return group

    def _failed(self, record: dict[str, Any]) -> None:
        group = self._failure_group(record)
        group.count += 1
        group.saw(record)
        error_type = _text(record.get("error_type"))
        group.error_types[error_type] = group.error_types.get(error_type, 0) + 1
        message = record.get("error_message")
        if type(message) is str:
            group.last_error_message = message

    def _suppressed(self, record: dict[str, Any]) -> None:
        held = record.get("suppressed")
        if type(held) is not int or held < 0:
            return
        group = self._failure_group(record)
        group.count += held
        group.suppressed += held
        error_type = _text(record.get("error_type"))
        group.error_types[error_type] = group.error_types.get(error_type, 0) + held
        stamp = record.get("timestamp")
        if type(stamp) is str:
            group.first_seen = group.first_seen or stamp
            group.last_seen = stamp

    def _rejected(self, record: dict[str, Any]) -> None:
        key = (
            _text(record.get("component")),
            _text(record.get("operation")),
            _text(record.get("error_kind")),
        )
        group = self.rejections.get(key)
        if group is None:
            group = self.rejections[key] = _Group()
        group.count += 1
        group.saw(record)

    def _slow(self, record: dict[str, Any]) -> None:
        key = (_text(record.get("component")), _text(record.get("operation")))
        group = self.slow.get(key)
        if group is None:
            group = self.slow[key] = _Group()
        group.count += 1
        group.saw(record)

    # --- output ------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` output: sections sorted by count, largest first."""

        def order(item: tuple[tuple[str, ...], _Group]) -> tuple[int, tuple[str, ...]]:
            return (-item[1].count, item[0])

        failures = [
            {
                "component": component,
                "operation": operation,
                "error_kind": kind,
                "count": group.count,
                "suppressed": group.suppressed,
                "error_types": dict(sorted(group.error_types.items(), key=lambda kv: -kv[1])),
                **group.durations.as_dict(),
                "first_seen": group.first_seen,
                "last_seen": group.last_seen,
                "last_error_message": group.last_error_message,
                "request_ids": list(group.request_ids),
            }
            for (component, operation, kind), group in sorted(self.failures.items(), key=order)
        ]
        rejections = [
            {
                "component": component,
                "operation": operation,
                "error_kind": kind,
                "count": group.count,
                **group.durations.as_dict(),
                "last_seen": group.last_seen,
            }
            for (component, operation, kind), group in sorted(self.rejections.items(), key=order)
        ]
        slow = [
            {
                "component": component,
                "operation": operation,
                "count": group.count,
                **group.durations.as_dict(),
                "last_seen": group.last_seen,
                "request_ids": list(group.request_ids),
            }
            for (component, operation), group in sorted(self.slow.items(), key=order)
        ]
        return {
            "lines": self.lines,
            "unparsed": self.unparsed,
            "filtered": self.filtered,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
            "failures": failures,
            "rejections": rejections,
            "slow": slow,
        }


def summarize(
    lines: Iterable[bytes | str], keep: Callable[[dict[str, Any]], bool] | None = None
) -> Summary:
    """Read ``lines`` once into a :class:`Summary`."""
    summary = Summary(keep)
    summary.consume(lines)
    return summary
