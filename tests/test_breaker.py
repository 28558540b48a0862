"""The circuit breaker's logic (datalayer/_breaker.py), on a fake clock: no I/O, no sleeps."""

from __future__ import annotations

import pytest

from datalayer._breaker import Admission, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(retry_after=0.25, max_retry_after=1.0, clock=clock), clock


def test_closed_lets_everyone_through() -> None:
    breaker, _ = make()
    assert breaker.closed and breaker.state == "closed"
    assert [breaker.admit(5.0) for _ in range(3)] == [Admission.PASS] * 3


def test_a_failure_opens_it_and_rejects_until_the_retry_time() -> None:
    breaker, clock = make()
    assert breaker.failed("OperationalError") is True
    assert not breaker.closed and breaker.state == "open"
    assert breaker.last_error == "OperationalError"
    assert breaker.admit(5.0) is Admission.REJECT
    clock.now += 0.24
    assert breaker.admit(5.0) is Admission.REJECT
    clock.now += 0.02
    assert breaker.admit(5.0) is Admission.PROBE


def test_one_probe_at_a_time() -> None:
    breaker, clock = make()
    breaker.failed()
    clock.now += 0.3
    assert breaker.admit(5.0) is Admission.PROBE
    assert breaker.state == "half-open"
    clock.now += 1.0  # the probe is still waiting: nobody else probes
    assert breaker.admit(5.0) is Admission.REJECT


def test_a_hung_probe_expires() -> None:
    breaker, clock = make()
    breaker.failed()
    clock.now += 0.3
    assert breaker.admit(2.0) is Admission.PROBE
    clock.now += 2.01
    assert breaker.admit(2.0) is Admission.PROBE


def test_a_probe_with_no_news_rearms_the_retry() -> None:
    breaker, clock = make()
    breaker.failed()
    clock.now += 0.3
    assert breaker.admit(5.0) is Admission.PROBE
    breaker.probe_done()
    assert breaker.admit(5.0) is Admission.REJECT
    clock.now += 0.25
    assert breaker.admit(5.0) is Admission.PROBE


def test_a_success_closes_it_and_says_how_long_it_was_open() -> None:
    breaker, clock = make()
    breaker.failed()
    clock.now += 1.5
    assert breaker.succeeded() == pytest.approx(1.5)
    assert breaker.closed
    assert breaker.admit(5.0) is Admission.PASS
    assert breaker.succeeded() is None  # already closed: no second "reachable"


def test_repeated_failures_back_off_to_the_cap() -> None:
    breaker, _ = make()
    assert breaker.failed() is True
    intervals = [breaker.retry_interval]
    for _ in range(5):
        assert breaker.failed() is False  # already open: not a new outage
        intervals.append(breaker.retry_interval)
    assert intervals == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert breaker.failures == 6
    # After a recovery the next outage starts from the shortest interval again.
    breaker.succeeded()
    breaker.failed()
    assert breaker.retry_interval == 0.25


def test_a_failure_during_a_probe_ends_it() -> None:
    breaker, clock = make()
    breaker.failed()
    clock.now += 0.3
    assert breaker.admit(5.0) is Admission.PROBE
    breaker.failed()  # the probe's connection attempt failed
    assert breaker.state == "open"
    clock.now += 0.49
    assert breaker.admit(5.0) is Admission.REJECT
    clock.now += 0.02
    assert breaker.admit(5.0) is Admission.PROBE


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError):
        Breaker(retry_after=0)
    with pytest.raises(ValueError):
        Breaker(retry_after=2.0, max_retry_after=1.0)
