"""What the boundary costs per call: success path, failure path, and failure during a storm.

Run: ``python benchmarks/boundary_overhead.py``. Prints ns per call (min of several
timeit repeats) and the ratios the errorkit issues set targets for:

- success path of ``@captured`` vs the undecorated function, a bare ``wrapt``
  pass-through, a hand-written try/except wrapper and ``sentry_sdk.trace``
  (target: within 1.5x of the wrapt pass-through);
- failure path vs a hand-written try/except + structlog error line +
  ``sentry_sdk.capture_exception`` doing the same work (target: within 1.2x);
- failure path during a storm (budget spent) vs a full report (target: >= 20x cheaper).

Sentry is initialised with errorkit's production options (scrubbing before_send
included) and an in-memory transport that drops the envelopes; log lines go
through the production JSON chain to /dev/null. Storm control is off (no limit)
except in the storm measurement.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sentry_sdk
import wrapt

from errorkit import captured, classify
from errorkit._logging import configure_structlog, get_logger
from errorkit._sentry import client_options
from errorkit.testing import MemoryTransport, storm_control

REPEATS = 15


class _Discard(list[dict[str, Any]]):
    def append(self, item: dict[str, Any]) -> None:
        pass


def init_sentry() -> None:
    options = client_options({}, dsn="https://public@errorkit.invalid/1")
    options["traces_sample_rate"] = None
    options["profiles_sample_rate"] = None
    options["transport"] = MemoryTransport(options, _Discard())
    sentry_sdk.init(**options)


def per_call_ns(
    candidates: dict[str, Any], number: int, repeats: int = REPEATS
) -> dict[str, float]:
    """ns per call for each candidate: min over repeats, candidates interleaved.

    Interleaving (A, B, C, A, B, C, ...) gives every candidate the same share of
    a machine whose load changes during the run; the minimum is the least
    disturbed run.
    """
    # CPU time of this thread, not wall time: on a shared machine the wall clock
    # also counts the time other processes held the CPU.
    timers = {name: timeit.Timer(fn, timer=time.thread_time) for name, fn in candidates.items()}
    best = {name: float("inf") for name in candidates}
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number=number))
    return {name: seconds / number * 1e9 for name, seconds in best.items()}


# --- success path ------------------------------------------------------------------------


def bare(x: int) -> int:
    return x + 1


@wrapt.decorator
def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


wrapt_bare = passthrough(bare)
# The floor under any wrapt-based decorator: FunctionWrapper calling a bound method.
wrapt_floor = wrapt.FunctionWrapper(bare, lambda wrapped, instance, args, kwargs: wrapped(*args))


def try_except(x: int) -> int | None:
    try:
        return bare(x)
    except Exception:
        return None


traced = sentry_sdk.trace(bare)
boundary = captured("bench", "bare")(bare)


# --- failure path --------------------------------------------------------------------------


class Outage(Exception):
    pass


def failing(x: int) -> int:
    raise Outage("database unavailable")


log = get_logger("errorkit")


def hand_written(x: int) -> int | None:
    """What a careful engineer writes by hand for one function: the same report."""
    started = perf_counter()
    try:
        return failing(x)
    except Exception as exc:
        duration_ms = (perf_counter() - started) * 1000.0
        kind = classify(exc)
        type_name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        event_id = sentry_sdk.capture_exception(
            exc,
            tags={"component": "bench", "operation": "failing", "error.kind": kind},
            contexts={"errorkit": {"duration_ms": duration_ms, "arguments": {"x": repr(x)}}},
            fingerprint=["bench", "failing", type_name],
            level="error",
        )
        log.error(
            "operation_failed",
            component="bench",
            operation="failing",
            duration_ms=round(duration_ms, 3),
            error_type=type_name,
            error_kind=kind,
            error_message=str(exc),
            sentry_event_id=event_id,
            exc_info=exc,
        )
        return None


captured_failing = captured("bench", "failing", reraise=False)(failing)


def main() -> None:
    init_sentry()
    devnull = open(os.devnull, "w")  # noqa: SIM115 -- lives as long as the process
    configure_structlog(log_format="json", stream=devnull)

    results = per_call_ns(
        {
            "undecorated": lambda: bare(1),
            "wrapt pass-through": lambda: wrapt_bare(1),
            "wrapt.FunctionWrapper floor": lambda: wrapt_floor(1),
            "hand-written try/except": lambda: try_except(1),
            "sentry_sdk.trace": lambda: traced(1),
            "@captured": lambda: boundary(1),
        },
        number=20_000,
    )
    print(f"success path (ns/call, thread CPU time, min of {REPEATS} interleaved repeats):")
    for name, ns in results.items():
        print(f"  {name:<28} {ns:8.0f}")
    ours = results["@captured"]
    print(f"  @captured / undecorated             {ours / results['undecorated']:.2f}x")
    print(
        f"  @captured / wrapt pass-through      {ours / results['wrapt pass-through']:.2f}x"
        "  (target <= 1.5x)"
    )
    floor = results["wrapt.FunctionWrapper floor"]
    print(f"  @captured / FunctionWrapper floor   {ours / floor:.2f}x")
    print(f"  @captured / hand-written try/except {ours / results['hand-written try/except']:.2f}x")
    print(f"  @captured / sentry_sdk.trace        {ours / results['sentry_sdk.trace']:.2f}x")

    with storm_control(events_per_minute=0, log_lines_per_minute=0):
        failure = per_call_ns(
            {"hand": lambda: hand_written(1), "captured": lambda: captured_failing(1)},
            number=20,
            repeats=30,
        )
    hand, full = failure["hand"], failure["captured"]
    print("failure path, full report (ns/call):")
    print(f"  hand-written try/except + structlog + capture_exception {hand:10.0f}")
    print(f"  @captured(reraise=False)                                {full:10.0f}")
    print(
        f"  @captured / hand-written                                {full / hand:.2f}x"
        "  (target <= 1.2x)"
    )

    with storm_control(events_per_minute=10, log_lines_per_minute=60):
        for _ in range(100):  # spend the budgets
            captured_failing(1)
        storm = per_call_ns({"storm": lambda: captured_failing(1)}, number=2_000)["storm"]
    print("failure path during a storm (budget spent):")
    print(f"  @captured, suppressed                                   {storm:10.0f}")
    print(
        f"  full report / suppressed                                {full / storm:.1f}x"
        "  (target >= 20x)"
    )


if __name__ == "__main__":
    main()
