"""``errorkit logs summary`` throughput, against a bare ``json.loads`` loop over the same lines.

Lines are generated from templates that errorkit's own production chain wrote
(``operation_failed`` with its structured traceback, the storm-control
``operation_failures_suppressed``, ``operation_rejected``, ``operation_slow``,
a stdlib ``logging`` record routed through the chain, a service's own info
line) plus foreign text lines, in the mix of a bad night at level info:

    50 % service info lines   15 % operation_slow       10 % operation_rejected
    10 % operation_failed      5 % ..._suppressed         7 % stdlib records
     3 % not JSON (uvicorn's text)

Usage::

    python benchmarks/logs_summary.py [--lines 300000] [--repeats 5]

Each repeat times, back to back on the same file: the baseline (read the file
in binary, ``json.loads`` every line), ``errorkit logs summary --json`` in
process, and the same on the gzipped file. Prints lines per second of CPU time
(what the command needs of a core; wall time, also printed, counts whatever
else the machine runs) and the ratio summary / baseline per repeat (median,
min-max), then one run of the console script as a subprocess (interpreter
start-up included). Target: >= 100,000 lines/s.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from errorkit import captured, flush_suppressed
from errorkit._logging import configure_structlog, unroute_stdlib_logging
from errorkit.cli import main as errorkit_main
from errorkit.testing import storm_control

OPERATIONS = [
    "get_client_by_phone",
    "get_company",
    "get_staff",
    "upsert_client",
    "get_services",
    "get_upcoming_appointments",
]
KINDS = ["transient", "timeout", "internal"]


class ServerGone(ConnectionError):
    pass


def _repository_call(phone: str) -> None:
    raise ServerGone(f"server closed the connection unexpectedly (client {phone})")


def _templates() -> dict[str, dict[str, Any]]:
    """One record of each shape, as errorkit's production JSON chain writes it."""
    out = io.StringIO()
    configure_structlog(log_format="json", stream=out, service="bookings-api")
    structlog.contextvars.bind_contextvars(request_id="3f1c9a7e2b", method="GET", path="/x")
    try:

        @captured("data-layer", "get_client_by_phone", reraise=False, expected=(KeyError,))
        def read(phone: str) -> None:
            _repository_call(phone)

        @captured("data-layer", "get_company", expected=(KeyError,))
        def rejected() -> None:
            raise KeyError("company_id must be a positive integer")

        @captured("data-layer", "get_staff", slow_ms=0.000001)
        def slow() -> None:
            pass

        with storm_control(1, 1):
            for _ in range(3):
                read("79686484488")
            flush_suppressed()  # the held-back count, as at shutdown
        with contextlib.suppress(KeyError):
            rejected()
        slow()
        logging.getLogger("psycopg.pool").warning("error connecting in 'pool-1': timeout expired")
        structlog.get_logger().info("request_finished", status=200, duration_ms=3.2)
    finally:
        structlog.contextvars.clear_contextvars()
        unroute_stdlib_logging()
        structlog.reset_defaults()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    by_event = {record["event"]: record for record in records}
    return {
        "failed": by_event["operation_failed"],
        "suppressed": by_event["operation_failures_suppressed"],
        "rejected": by_event["operation_rejected"],
        "slow": by_event["operation_slow"],
        "stdlib": by_event["error connecting in 'pool-1': timeout expired"],
        "info": by_event["request_finished"],
    }


MIX = [
    ("info", 50),
    ("slow", 15),
    ("rejected", 10),
    ("failed", 10),
    ("suppressed", 5),
    ("stdlib", 7),
    ("text", 3),
]


def generate(path: Path, count: int, seed: int = 15) -> None:
    rng = random.Random(seed)
    templates = _templates()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    start = datetime(2026, 1, 31, 22, 0, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            kind = rng.choice(kinds)
            moment = start + timedelta(milliseconds=n * 7)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if kind == "text":
                out.write(f'INFO:     127.0.0.1:52144 - "GET /health HTTP/1.1" 200 OK {n}\n')
                continue
            record = dict(templates[kind])
            record["timestamp"] = stamp
            record["request_id"] = f"{rng.getrandbits(40):010x}"
            if "operation" in record:
                record["operation"] = rng.choice(OPERATIONS)
            if "error_kind" in record and kind != "rejected":
                record["error_kind"] = rng.choice(KINDS)
            if "duration_ms" in record:
                record["duration_ms"] = round(rng.lognormvariate(1.5, 1.2), 3)
            if kind == "slow":
                record["duration_ms"] = round(500 + rng.expovariate(1 / 400), 3)
            if kind == "suppressed":
                record["suppressed"] = rng.randint(1, 300)
            out.write(json.dumps(record) + "\n")


def baseline(path: Path) -> None:
    loads = json.loads
    with path.open("rb") as handle:
        for raw in handle:
            try:  # noqa: SIM105 - the cheapest way, for a fair baseline
                loads(raw)
            except ValueError:
                pass


def summary(path: Path) -> None:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        code = errorkit_main(["logs", "summary", str(path), "--json"])
    assert code == 0, code


def timed(fn: Any, path: Path) -> tuple[float, float]:
    """Wall seconds and this thread's CPU seconds of ``fn(path)``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(path)
    return time.perf_counter() - wall, time.thread_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000, help="lines generated")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="logs_summary_"))
    try:
        log = folder / "service.log"
        generate(log, args.lines)
        packed = folder / "service.log.gz"
        with log.open("rb") as src, gzip.open(packed, "wb") as dst:
            shutil.copyfileobj(src, dst)
        size_mb = log.stat().st_size / 1e6
        print(
            f"{args.lines} lines, {size_mb:.1f} MB ({size_mb * 1e6 / args.lines:.0f} bytes/line),"
            f" gz {packed.stat().st_size / 1e6:.1f} MB; {args.repeats} repeats"
        )
        summary(log)  # warm up: imports, page cache
        times: dict[str, list[tuple[float, float]]] = {
            "baseline": [],
            "summary": [],
            "summary .gz": [],
        }
        for _ in range(args.repeats):
            for name, fn, path in (
                ("baseline", baseline, log),
                ("summary", summary, log),
                ("summary .gz", summary, packed),
            ):
                times[name].append(timed(fn, path))
        # CPU time is what the command needs of a core; wall time also counts the other
        # processes of a shared machine, so it is printed but not the headline.
        for name, pairs in times.items():
            cpu_rates = [args.lines / c for _, c in pairs]
            wall_rates = [args.lines / w for w, _ in pairs]
            print(
                f"  {name:12s}: median {statistics.median(cpu_rates):9,.0f} lines/s of CPU"
                f" (min {min(cpu_rates):9,.0f}, max {max(cpu_rates):9,.0f});"
                f" wall median {statistics.median(wall_rates):9,.0f}"
            )
        for name in ("summary", "summary .gz"):
            ratios = [s[1] / b[1] for s, b in zip(times[name], times["baseline"], strict=True)]
            print(
                f"  {name} / baseline CPU time: median {statistics.median(ratios):.2f}x"
                f" (min {min(ratios):.2f}x, max {max(ratios):.2f}x)"
            )
        script = shutil.which("errorkit") or "errorkit"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [script, "logs", "summary", str(log), "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(
            f"  console script, start-up included: {args.lines / child_cpu:,.0f} lines/s of CPU,"
            f" {args.lines / elapsed:,.0f} wall"
        )
        print("  target: >= 100,000 lines/s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
