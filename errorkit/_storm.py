"""Storm control: per-fingerprint budgets for Sentry events and error log lines.

An outage makes every call of every method fail. Each fingerprint (component,
operation, exception type) gets a budget per window (one minute): beyond it
failures are counted instead of reported. The count travels with the next
report sent (``suppressed`` in the event's ``errorkit`` context; an
``operation_failures_suppressed`` warning line for logs), so the numbers still
add up. Everything here is O(1) per failure under one lock, and the table of
fingerprints is bounded (least recently used dropped, its counts flushed).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

Clock = Callable[[], float]

WINDOW_SECONDS = 60.0
MAX_FINGERPRINTS = 4096


@dataclass(slots=True)
class _Budget:
    window_start: float
    sent: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one failure for one channel (events or log lines).

    ``send``: report it. ``suppressed``: how many were held back since the
    last one reported; they travel with this report.
    """

    send: bool
    suppressed: int = 0


_SEND = Decision(True)
_HOLD = Decision(False)


class _Channel:
    def __init__(self, per_window: int, clock: Clock, window: float, cap: int) -> None:
        self.per_window = per_window
        self._clock = clock
        self._window = window
        self._cap = cap
        self._budgets: OrderedDict[Hashable, _Budget] = OrderedDict()

    def admit(self, key: Hashable) -> tuple[Decision, list[tuple[Hashable, int]]]:
        """Decide for one failure; also return (key, count) pairs evicted with pending counts."""
        if self.per_window <= 0:
            return _SEND, []
        now = self._clock()
        evicted: list[tuple[Hashable, int]] = []
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(window_start=now)
            if len(self._budgets) > self._cap:
                old_key, old = self._budgets.popitem(last=False)
                if old.pending:
                    evicted.append((old_key, old.pending))
        else:
            self._budgets.move_to_end(key)
            if now - budget.window_start >= self._window:
                budget.window_start = now
                budget.sent = 0
        if budget.sent < self.per_window:
            budget.sent += 1
            carried = budget.pending
            budget.pending = 0
            return (Decision(True, carried) if carried else _SEND), evicted
        budget.pending += 1
        return _HOLD, evicted

    def give_back(self, key: Hashable, count: int) -> None:
        budget = self._budgets.get(key)
        if budget is not None:
            budget.pending += count

    def drain(self) -> list[tuple[Hashable, int]]:
        out = [(key, b.pending) for key, b in self._budgets.items() if b.pending]
        for b in self._budgets.values():
            b.pending = 0
        return out


class StormControl:
    """Budgets for events and log lines, per fingerprint, thread-safe.

    ``events_per_minute`` / ``log_lines_per_minute`` of 0 mean no limit.
    ``clock`` returns seconds (monotonic); tests pass their own.
    """

    def __init__(
        self,
        events_per_minute: int = 10,
        log_lines_per_minute: int = 60,
        *,
        clock: Clock = time.monotonic,
        window_seconds: float = WINDOW_SECONDS,
        max_fingerprints: int = MAX_FINGERPRINTS,
    ) -> None:
        self._lock = threading.Lock()
        self._config = (
            events_per_minute,
            log_lines_per_minute,
            clock,
            window_seconds,
            max_fingerprints,
        )
        self.events = _Channel(events_per_minute, clock, window_seconds, max_fingerprints)
        self.log_lines = _Channel(log_lines_per_minute, clock, window_seconds, max_fingerprints)

    def fresh(self) -> StormControl:
        """A new StormControl with the same budgets and clock, and nothing counted."""
        events, lines, clock, window, cap = self._config
        return StormControl(events, lines, clock=clock, window_seconds=window, max_fingerprints=cap)

    def admit_event(self, key: Hashable) -> tuple[Decision, list[tuple[Hashable, int]]]:
        if self.events.per_window <= 0:
            return _SEND, []
        with self._lock:
            return self.events.admit(key)

    def admit_log_line(self, key: Hashable) -> tuple[Decision, list[tuple[Hashable, int]]]:
        if self.log_lines.per_window <= 0:
            return _SEND, []
        with self._lock:
            return self.log_lines.admit(key)

    def event_not_sent(self, key: Hashable, carried: int) -> None:
        """An admitted event was not sent: the count it carried waits for the next one."""
        if carried:
            with self._lock:
                self.events.give_back(key, carried)

    def drain(self) -> tuple[list[tuple[Hashable, int]], list[tuple[Hashable, int]]]:
        """Take every pending count: (events, log lines), each a list of (key, count)."""
        with self._lock:
            return self.events.drain(), self.log_lines.drain()


_current = StormControl()


def current() -> StormControl:
    return _current


def install(control: StormControl) -> StormControl:
    """Make ``control`` the active one; return the previous one."""
    global _current
    previous, _current = _current, control
    return previous
