"""``errorkit logs summary`` and ``errorkit logs tail``: on lines errorkit really wrote,
through the console script (a subprocess, as a user runs it) and in process."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from errorkit._logs import parse_time_bound
from errorkit._summary import DurationSketch, summarize
from errorkit.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("errorkit", path=str(Path(sys.executable).parent)) or "errorkit"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A service's run: 40 outage failures (storm control lets 5 error lines through and
# counts the rest), 3 timeouts, 2 rejections, 2 slow calls, and a foreign text line.
SERVICE = textwrap.dedent(
    """
    import sys, time
    import structlog
    import errorkit
    from errorkit import captured

    errorkit.setup("bookings-api", env_file=None)

    @captured("data-layer", "get_company", reraise=False, expected=(LookupError,))
    def get_company(exc):
        raise exc

    @captured("data-layer", "get_staff", slow_ms=0.001)
    def get_staff():
        time.sleep(0.002)

    structlog.contextvars.bind_contextvars(request_id="req-outage")
    for _ in range(40):
        get_company(ConnectionError("server closed the connection unexpectedly"))
    structlog.contextvars.bind_contextvars(request_id="req-slow")
    for _ in range(3):
        get_company(TimeoutError("canceling statement due to statement timeout"))
    for _ in range(2):
        try:
            get_company(LookupError("company_id must be positive"))
        except LookupError:
            pass
    get_staff()
    get_staff()
    print("INFO:     127.0.0.1:52144 - GET /health HTTP/1.1 200 OK", flush=True)
    structlog.contextvars.clear_contextvars()  # the request is over, as middleware does
    # at exit setup()'s hook reports the 35 held-back failures
    """
)


def service_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERRORKIT_", "SENTRY_"))}
    env["ERRORKIT_LOG_LINES_PER_MINUTE"] = "5"
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture(scope="module")
def service_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON log of a real run of errorkit (setup(), storm control, exit flush)."""
    result = subprocess.run(
        [sys.executable, "-c", SERVICE],
        env=service_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    log = tmp_path_factory.mktemp("logs") / "service.log"
    log.write_text(result.stdout, encoding="utf-8")
    return log


def errorkit_cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SCRIPT, *args], input=stdin, capture_output=True, check=False, env=env, timeout=120
    )


def summary_json(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    result = errorkit_cli("logs", "summary", "--json", *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def counts(data: dict[str, Any], section: str = "failures") -> dict[tuple[str, ...], Any]:
    keys = (
        ("component", "operation", "error_kind")
        if section != "slow"
        else ("component", "operation")
    )
    return {
        tuple(item[k] for k in keys): (
            (item["count"], item["suppressed"]) if section == "failures" else item["count"]
        )
        for item in data[section]
    }


# --- summary -----------------------------------------------------------------------------


def test_summary_counts_every_failure_storm_held_ones_included(service_log: Path) -> None:
    lines = service_log.read_text().splitlines()
    # what the file really holds: 5 + 3 error lines, the rest only counted
    assert sum('"operation_failed"' in line for line in lines) == 8
    data = summary_json(str(service_log))
    assert counts(data) == {
        ("data-layer", "get_company", "transient"): (40, 35),
        ("data-layer", "get_company", "timeout"): (3, 0),
    }
    assert counts(data, "rejections") == {("data-layer", "get_company", "internal"): 2}
    assert counts(data, "slow") == {("data-layer", "get_staff"): 2}
    assert data["unparsed"] == 1
    assert data["lines"] == len([line for line in lines if line.strip()])


def test_summary_json_shape(service_log: Path) -> None:
    data = summary_json(str(service_log))
    assert list(data) == [
        "lines",
        "unparsed",
        "filtered",
        "first_timestamp",
        "last_timestamp",
        "failures",
        "rejections",
        "slow",
    ]
    transient = data["failures"][0]  # largest count first
    assert transient["error_kind"] == "transient"
    assert transient["error_types"] == {"ConnectionError": 40}
    assert transient["request_ids"] == ["req-outage"]
    assert transient["last_error_message"] == "server closed the connection unexpectedly"
    assert 0 <= transient["p50_ms"] <= transient["p95_ms"] <= transient["max_ms"]
    slow = data["slow"][0]
    assert slow["p50_ms"] >= 2 * 0.99 and slow["max_ms"] >= 2
    assert data["first_timestamp"] <= data["last_timestamp"]


def test_gz_and_standard_input_read_the_same(service_log: Path, tmp_path: Path) -> None:
    packed = tmp_path / "service.log.1.gz"
    packed.write_bytes(gzip.compress(service_log.read_bytes()))
    plain = summary_json(str(service_log))
    assert summary_json(str(packed)) == plain
    assert summary_json(stdin=service_log.read_bytes()) == plain
    assert summary_json(stdin=packed.read_bytes()) == plain  # zcat built in
    doubled = summary_json(str(service_log), str(packed))
    assert counts(doubled)[("data-layer", "get_company", "transient")] == (80, 70)


def test_lines_that_are_not_ours_are_counted_and_never_stop_the_run(
    service_log: Path, tmp_path: Path
) -> None:
    noise = [
        b"not json at all",
        b'{"truncated": ',
        b"[1, 2, 3]",
        b'"a string"',
        b'{"no_event_key": 1}',
        b'{"event": 42}',
        b'{"event": "x"} trailing',
        b"[" * 100_000,
        b"\xff\xfe binary garbage \x00",
        b"",
        b"   ",
        b'  {"event": "indented", "level": "info"}  ',  # ours: blanks around JSON are fine
    ]
    mixed = tmp_path / "mixed.log"
    mixed.write_bytes(b"\n".join(noise) + b"\n" + service_log.read_bytes())
    data = summary_json(str(mixed))
    clean = summary_json(str(service_log))
    assert data["unparsed"] == clean["unparsed"] + 9  # blank lines are not counted
    assert data["lines"] == clean["lines"] + 10  # and the indented line of ours
    assert data["failures"] == clean["failures"]


def line(event: str, stamp: str, **fields: Any) -> str:
    record = {"component": "data-layer", "operation": "get_company", **fields}
    return json.dumps({**record, "event": event, "level": "error", "timestamp": stamp})


def test_since_and_until_filter_on_the_timestamp(tmp_path: Path) -> None:
    log = tmp_path / "night.log"
    log.write_text(
        "\n".join(
            [
                line("operation_failed", "2026-01-31T21:59:59.999999Z", error_kind="transient"),
                line("operation_failed", "2026-01-31T22:00:00.000000Z", error_kind="transient"),
                line("operation_failed", "2026-01-31T22:30:00.000000Z", error_kind="transient"),
                line(
                    "operation_failures_suppressed",
                    "2026-01-31T22:45:00.000000Z",
                    error_kind="transient",
                    suppressed=9,
                ),
                line("operation_failed", "2026-01-31T23:00:00.000000Z", error_kind="transient"),
                line("operation_failed", "2026-02-01T01:00:00+03:00", error_kind="transient"),
                json.dumps({"event": "no_timestamp", "level": "info"}),
            ]
        )
        + "\n"
    )
    window = summary_json(str(log), "--since", "2026-01-31T22:00", "--until", "2026-01-31T23:00")
    # 22:00 (twice: 01:00+03:00 is 22:00 UTC), 22:30, and the 9 held back; 23:00 is out
    assert counts(window) == {("data-layer", "get_company", "transient"): (12, 9)}
    assert window["filtered"] == 3  # outside, and the line without a timestamp
    late = summary_json(
        str(log), "--since", "2026-01-31T22:00:00+00:00", "--until", "2026-01-31T22:00:01"
    )
    assert counts(late) == {("data-layer", "get_company", "transient"): (2, 0)}
    # a span back from now: these lines are long past
    assert summary_json(str(log), "--since", "2h")["failures"] == []


def test_time_bounds() -> None:
    now = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    assert parse_time_bound("90m", now=now) == "2026-01-31T21:30:00.000000"
    assert parse_time_bound("1d", now=now) == "2026-01-30T23:00:00.000000"
    assert parse_time_bound("2026-01-31") == "2026-01-31T00:00:00.000000"
    assert parse_time_bound("2026-02-01T01:30+03:00") == "2026-01-31T22:30:00.000000"
    for bad in ("yesterday", "5 weeks", "2026-13-01", ""):
        with pytest.raises(ValueError):
            parse_time_bound(bad)


def test_component_and_operation_filters(service_log: Path) -> None:
    data = summary_json(str(service_log), "--operation", "get_staff")
    assert data["failures"] == [] and counts(data, "slow") == {("data-layer", "get_staff"): 2}
    assert summary_json(str(service_log), "--component", "http")["failures"] == []


def test_human_summary(service_log: Path) -> None:
    result = errorkit_cli("logs", "summary", str(service_log))
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "failures: 43 (35 held back by storm control)" in text
    assert re.search(r"data-layer\s+get_company\s+transient\s+40\s+35", text)
    assert "rejections: 2" in text and "slow calls: 2" in text
    assert not ANSI.search(text)


def test_exit_codes(service_log: Path, tmp_path: Path) -> None:
    missing = errorkit_cli(
        "logs", "summary", "--json", str(tmp_path / "nope.log"), str(service_log)
    )
    assert missing.returncode == 1
    assert b"nope.log" in missing.stderr
    # what could be read is still summarised
    assert counts(json.loads(missing.stdout))[("data-layer", "get_company", "transient")] == (
        40,
        35,
    )

    truncated = tmp_path / "cut.log.gz"
    truncated.write_bytes(gzip.compress(service_log.read_bytes())[:-20])
    cut = errorkit_cli("logs", "summary", "--json", str(truncated))
    assert cut.returncode == 1
    assert json.loads(cut.stdout)["lines"] > 0

    assert errorkit_cli("logs", "summary", str(tmp_path)).returncode == 1  # a directory
    for usage in (
        ("logs", "summary", "--since", "whenever"),
        ("logs", "summary", "--bogus"),
        ("logs",),
        ("logs", "tail", "--level", "loud"),
        ("logs", "tail", "-n", "0"),
        (),
    ):
        assert errorkit_cli(*usage).returncode == 2, usage
    assert errorkit_cli("logs", "summary", str(service_log)).returncode == 0


def test_python_dash_m_errorkit(service_log: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "errorkit", "logs", "summary", "--json", str(service_log)],
        capture_output=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["failures"][0]["count"] == 40


def test_in_process(service_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "summary", "--json", str(service_log)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert counts(data)[("data-layer", "get_company", "transient")] == (40, 35)
    with pytest.raises(SystemExit) as usage:
        main(["logs", "summary", "--until", "later"])
    assert usage.value.code == 2


# --- streaming ---------------------------------------------------------------------------


def generated(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield (
            line(
                "operation_failed" if n % 3 else "operation_slow",
                f"2026-01-31T22:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:06d}Z",
                error_kind="transient",
                operation=f"op{n % 7}",
                duration_ms=(n % 997) * 1.37,
                request_id=f"r{n}",
            )
            + "\n"
        ).encode()


def peak_bytes(count: int) -> int:
    tracemalloc.start()
    try:
        summary = summarize(generated(count))
        summary.as_dict()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input() -> None:
    small, large = peak_bytes(5_000), peak_bytes(50_000)
    # ten times the lines, not ten times the memory: bounded sketches and counters only
    assert large < small * 1.5 + 64_000, (small, large)


def test_sketch_quantiles_are_within_one_percent() -> None:
    sketch = DurationSketch()
    values = [0.01 * (i + 1) for i in range(10_000)] + [0.0] * 10
    for value in values:
        sketch.add(value)
    ordered = sorted(values)
    for q in (0.5, 0.95):
        exact = ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]
        estimate = sketch.quantile(q)
        assert estimate is not None and abs(estimate - exact) <= 0.01 * exact
    assert sketch.maximum == 100.0
    assert len(sketch.buckets) < 500


# --- tail --------------------------------------------------------------------------------


def test_tail_renders_for_a_person_without_colour_off_a_terminal(service_log: Path) -> None:
    result = errorkit_cli("logs", "tail", str(service_log))
    assert result.returncode == 0
    text = result.stdout.decode()
    assert not ANSI.search(text)
    rendered = [row for row in text.splitlines() if "operation_failed" in row]
    assert len(rendered) == 8
    assert "[error" in rendered[0] and "component=data-layer" in rendered[0]
    assert "request_id=req-outage" in rendered[0]
    # the structured traceback is shown as a traceback
    assert "Traceback (most recent call last):" in text
    assert "ConnectionError: server closed the connection unexpectedly" in text
    assert "INFO:     127.0.0.1:52144 - GET /health" in text  # a foreign line, as is


def test_tail_filters(service_log: Path) -> None:
    def shown(*args: str) -> list[str]:
        result = errorkit_cli("logs", "tail", str(service_log), *args)
        assert result.returncode == 0, result.stderr
        return [row for row in result.stdout.decode().splitlines() if re.match(r"^\d{4}-", row)]

    assert len(shown("--level", "error")) == 8
    warnings = shown("--level", "warning")
    assert len(warnings) == 8 + 2 + 2 + 1  # + rejections, slow calls, the held-back count
    assert all("get_staff" in row for row in shown("--operation", "get_staff"))
    assert len(shown("--operation", "get_staff")) == 2
    slow_request = shown("--request-id", "req-slow")
    assert len(slow_request) == 3 + 2 + 2
    assert shown("--component", "nothing") == []
    last = shown("-n", "2", "--request-id", "req-slow")
    assert last == slow_request[-2:]
    filtered = errorkit_cli("logs", "tail", str(service_log), "--level", "info").stdout.decode()
    assert "GET /health" not in filtered  # a filter keeps only our lines


def test_tail_reads_standard_input_and_gz(service_log: Path, tmp_path: Path) -> None:
    packed = tmp_path / "service.log.gz"
    packed.write_bytes(gzip.compress(service_log.read_bytes()))
    plain = errorkit_cli("logs", "tail", str(service_log)).stdout
    assert errorkit_cli("logs", "tail", str(packed)).stdout == plain
    assert errorkit_cli("logs", "tail", stdin=service_log.read_bytes()).stdout == plain


def test_tail_colours_a_terminal(service_log: Path) -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [SCRIPT, "logs", "tail", str(service_log), "--level", "error", "-n", "1"],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=service_env(),
        )
        os.close(follower)
        output = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(leader)
    assert ANSI.search(output.decode()), output


def test_tail_follows_appends_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "live.log"
    log.write_text(line("operation_failed", "2026-01-31T22:00:00.000000Z", request_id="one") + "\n")
    proc = subprocess.Popen(
        [SCRIPT, "logs", "tail", "-f", str(log), "--level", "error"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:

        def next_line() -> str:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "no line followed"
            assert proc.stdout is not None
            return proc.stdout.readline().decode()

        assert "request_id=one" in next_line()
        with log.open("a") as handle:
            handle.write(json.dumps({"event": "noise", "level": "info"}) + "\n")
            handle.write(line("operation_failed", "2026-01-31T22:00:01.000000Z", request_id="two"))
            handle.flush()
            time.sleep(0.5)  # a half-written line is held until its newline arrives
            handle.write("\n")
        assert "request_id=two" in next_line()
        rotated = tmp_path / "live.log.1"
        log.rename(rotated)
        log.write_text(
            line("operation_failed", "2026-01-31T22:00:02.000000Z", request_id="three") + "\n"
        )
        assert "request_id=three" in next_line()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- docs --------------------------------------------------------------------------------


def test_documented_commands_and_flags_exist() -> None:
    doc = (ROOT / "docs" / "error-handling.md").read_text(encoding="utf-8")
    documented = re.findall(r"`errorkit logs (summary|tail)([^`]*)`", doc)
    assert {name for name, _ in documented} == {"summary", "tail"}
    parser = build_parser()
    logs = parser._subparsers._group_actions[0].choices["logs"]  # type: ignore[union-attr]
    commands = logs._subparsers._group_actions[0].choices
    for name, rest in documented:
        known = {o for action in commands[name]._actions for o in action.option_strings}
        flags = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", rest))
        assert flags <= known, (name, flags - known)
