"""A circuit breaker for "can the pool reach the server": the pure logic, no I/O.

``AsyncDatabase`` / ``Database`` feed it the outcome of every connection attempt
the pool makes and ask it, at checkout, whether a caller may wait for a
connection at all. While the server is unreachable (the last attempt failed)
callers are turned away at once instead of queueing for the pool timeout; every
``retry_after`` seconds one caller, the probe, is let through to find out
whether the server is back. A connection made (by the probe or by the pool's
own reconnect) closes the breaker.

The clock is injected so the tests drive it without sleeping. Thread-safe: the
sync pool reports from its worker threads.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable

__all__ = ["Admission", "Breaker"]

#: First wait before a probe after a failure, and the most it grows to (doubling).
RETRY_AFTER_MIN_S = 0.25
RETRY_AFTER_MAX_S = 1.0


class Admission(enum.Enum):
    """What ``Breaker.admit`` tells a caller."""

    PASS = "pass"  # closed: go ahead as usual
    PROBE = "probe"  # open, and this caller is the one probe
    REJECT = "reject"  # open: fail at once


class Breaker:
    """Closed, open, or half-open (one probe in flight).

    ``closed`` is a plain attribute so the hot path pays one attribute read.
    ``failures`` counts failed attempts, so a waiting caller can tell that one
    failed while it waited.
    """

    def __init__(
        self,
        *,
        retry_after: float = RETRY_AFTER_MIN_S,
        max_retry_after: float = RETRY_AFTER_MAX_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < retry_after <= max_retry_after:
            raise ValueError("need 0 < retry_after <= max_retry_after")
        self.closed = True
        self.failures = 0
        self.last_error: str | None = None
        self._min_retry = retry_after
        self._max_retry = max_retry_after
        self._retry = retry_after
        self._clock = clock
        self._retry_at = 0.0
        self._opened_at = 0.0
        self._probe_until = 0.0  # a probe is in flight until then (it may hang)
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if self.closed:
            return "closed"
        return "half-open" if self._clock() < self._probe_until else "open"

    @property
    def retry_interval(self) -> float:
        """Seconds between probes right now."""
        return self._retry

    def failed(self, error: str | None = None) -> bool:
        """A connection attempt failed. True when this opened a closed breaker."""
        with self._lock:
            now = self._clock()
            opened = self.closed
            if opened:
                self._retry = self._min_retry
                self._opened_at = now
            else:
                self._retry = min(self._retry * 2, self._max_retry)
            self.closed = False
            self.failures += 1
            self.last_error = error
            self._retry_at = now + self._retry
            self._probe_until = 0.0
            return opened

    def succeeded(self) -> float | None:
        """A connection was made (or a probe got a working one).

        Returns how long the breaker was open, in seconds, when this closed it.
        """
        with self._lock:
            if self.closed:
                return None
            self.closed = True
            self._probe_until = 0.0
            return self._clock() - self._opened_at

    def admit(self, probe_timeout: float) -> Admission:
        """May a caller wait for a connection? ``probe_timeout``: the longest a probe waits."""
        with self._lock:
            if self.closed:
                return Admission.PASS
            now = self._clock()
            if now < self._retry_at or now < self._probe_until:
                return Admission.REJECT
            self._probe_until = now + probe_timeout
            return Admission.PROBE

    def probe_done(self) -> None:
        """The probe ended with no news (neither ``failed`` nor ``succeeded`` was called)."""
        with self._lock:
            if self.closed or self._probe_until == 0.0:
                return
            self._probe_until = 0.0
            self._retry_at = self._clock() + self._retry
