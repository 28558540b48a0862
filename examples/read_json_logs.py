"""Summarise the JSON log lines of a run: failures per operation, slow calls, rejections.

errorkit writes one JSON object per line (``errorkit.setup()``). Feed this
script a log file, or pipe a program into it:

    python examples/read_json_logs.py service.log
    python examples/decorate_new_method.py | python examples/read_json_logs.py
    python examples/read_json_logs.py --component data-layer --json < service.log

Lines that are not JSON objects are skipped (and counted). Failures held back
by storm control (``operation_failures_suppressed``) are added to the counts,
so the numbers match what really failed. Standard library only: copy it
anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

FAILED = "operation_failed"
REJECTED = "operation_rejected"
SLOW = "operation_slow"
SUPPRESSED = "operation_failures_suppressed"


@dataclass
class OperationStats:
    """What happened to one ``component.operation`` during the run."""

    failures: int = 0
    suppressed: int = 0
    rejected: int = 0
    slow: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    slowest_ms: float = 0.0
    last_message: str = ""
    request_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Failures logged one by one plus those storm control only counted."""
        return self.failures + self.suppressed


@dataclass
class Summary:
    lines: int = 0
    skipped: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    operations: defaultdict[str, OperationStats] = field(
        default_factory=lambda: defaultdict(OperationStats)
    )
    slow_calls: list[dict[str, Any]] = field(default_factory=list)


def parse_lines(lines: Iterable[str], summary: Summary) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``lines``; anything else is counted as skipped."""
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            summary.skipped += 1
            continue
        if not isinstance(record, dict):
            summary.skipped += 1
            continue
        yield record


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def summarise(
    lines: Iterable[str],
    *,
    component: str | None = None,
    operation: str | None = None,
    slow_ms: float | None = None,
) -> Summary:
    """Read ``lines`` once and count what matters at 3 a.m.

    ``slow_ms`` also counts ``operation_completed`` lines (debug level) at or
    above that duration as slow, for runs logged with ``ERRORKIT_LOG_LEVEL=debug``.
    """
    summary = Summary()
    for record in parse_lines(lines, summary):
        if component is not None and record.get("component") != component:
            continue
        if operation is not None and record.get("operation") != operation:
            continue
        summary.lines += 1
        summary.levels[str(record.get("level", "?"))] += 1
        event = record.get("event")
        if "component" not in record or "operation" not in record:
            continue
        name = f"{record['component']}.{record['operation']}"
        duration = _number(record.get("duration_ms"))
        if event == FAILED:
            stats = summary.operations[name]
            stats.failures += 1
            stats.kinds[str(record.get("error_kind", "?"))] += 1
            stats.error_types[str(record.get("error_type", "?"))] += 1
            stats.last_message = str(record.get("error_message", ""))
            if record.get("request_id"):
                stats.request_ids.append(str(record["request_id"]))
        elif event == SUPPRESSED:
            summary.operations[name].suppressed += int(_number(record.get("suppressed")))
        elif event == REJECTED:
            summary.operations[name].rejected += 1
        elif event == SLOW or (
            event == "operation_completed" and slow_ms is not None and duration >= slow_ms
        ):
            stats = summary.operations[name]
            stats.slow += 1
            stats.slowest_ms = max(stats.slowest_ms, duration)
            summary.slow_calls.append(
                {
                    "operation": name,
                    "duration_ms": duration,
                    "timestamp": record.get("timestamp"),
                    "request_id": record.get("request_id"),
                }
            )
    summary.slow_calls.sort(key=lambda call: -call["duration_ms"])
    return summary


def as_dict(summary: Summary, top: int) -> dict[str, Any]:
    """The summary as plain JSON-ready data (the ``--json`` output)."""
    return {
        "lines": summary.lines,
        "skipped": summary.skipped,
        "levels": dict(summary.levels),
        "operations": {
            name: {
                "failed": stats.failed,
                "suppressed": stats.suppressed,
                "rejected": stats.rejected,
                "slow": stats.slow,
                "slowest_ms": stats.slowest_ms,
                "error_kinds": dict(stats.kinds),
                "error_types": dict(stats.error_types),
                "last_error_message": stats.last_message,
                "request_ids": stats.request_ids[-5:],
            }
            for name, stats in sorted(summary.operations.items())
        },
        "slowest_calls": summary.slow_calls[:top],
    }


def print_report(summary: Summary, top: int, out: TextIO) -> None:
    levels = ", ".join(f"{level} {count}" for level, count in sorted(summary.levels.items()))
    print(f"{summary.lines} log lines ({levels or 'none'}); {summary.skipped} skipped", file=out)
    failing = sorted(
        ((name, s) for name, s in summary.operations.items() if s.failed or s.rejected),
        key=lambda item: (-item[1].failed, -item[1].rejected, item[0]),
    )
    print("\nfailures per operation:", file=out)
    if not failing:
        print("  none", file=out)
    for name, stats in failing:
        kinds = ", ".join(f"{kind} {n}" for kind, n in stats.kinds.most_common())
        held = f" ({stats.suppressed} only counted)" if stats.suppressed else ""
        print(
            f"  {name}: {stats.failed} failed{held}, {stats.rejected} rejected"
            + (f"; kinds: {kinds}" if kinds else ""),
            file=out,
        )
        if stats.last_message:
            print(f"    last: {stats.last_message}", file=out)
    print(f"\nslow calls ({len(summary.slow_calls)}), slowest first:", file=out)
    if not summary.slow_calls:
        print("  none", file=out)
    for call in summary.slow_calls[:top]:
        where = f" request {call['request_id']}" if call.get("request_id") else ""
        print(f"  {call['duration_ms']:10.1f} ms  {call['operation']}{where}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="log files (default: standard input)")
    parser.add_argument("--component", help="only lines of this component")
    parser.add_argument("--operation", help="only lines of this operation")
    parser.add_argument(
        "--slow-ms", type=float, help="also count debug operation_completed lines this slow"
    )
    parser.add_argument("--top", type=int, default=10, help="slow calls listed (default 10)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    def all_lines() -> Iterator[str]:
        if not args.files:
            yield from sys.stdin
        for path in args.files:
            with open(path, encoding="utf-8", errors="replace") as handle:
                yield from handle

    summary = summarise(
        all_lines(), component=args.component, operation=args.operation, slow_ms=args.slow_ms
    )
    if args.json:
        json.dump(as_dict(summary, args.top), sys.stdout, indent=2, default=str)
        print()
    else:
        print_report(summary, args.top, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
