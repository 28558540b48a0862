"""Every program in examples/ runs as a user would run it: a subprocess, for real.

Examples that need a database get ``DATABASE_URL`` pointed at the suite's own
database (``pg_url``); none of them may send anything to Sentry.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow

# Waiting for the example service to answer: a generous bound so a loaded machine
# cannot fail the test, never an assertion about speed.
_STARTUP_DEADLINE_S = 120.0


def example_env(pg_url: str | None = None) -> dict[str, str]:
    """The environment a user would have: nothing of the suite's, no Sentry DSN."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENTRY_", "ERRORKIT_", "POSTGRES_", "PG"))
        and k not in ("DATABASE_URL", "TEST_DATABASE_URL", "PYTEST_ADDOPTS")
    }
    if pg_url is not None:
        env["DATABASE_URL"] = pg_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_example(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_every_example_has_a_test() -> None:
    tested = {
        "decorate_new_method.py",
        "service_using_facade.py",
        "fastapi_service.py",
        "testing_with_errorkit.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


# --- the snippets of README.md and the guides --------------------------------------------

DOCS = ("README.md", "docs/error-handling.md", "docs/datalayer.md")
_RUNNABLE = re.compile(r"<!-- test: run -->\n```python\n(.*?)\n```", re.DOTALL)


def runnable_snippets() -> list[Any]:
    """Every ``python`` block marked ``<!-- test: run -->`` in the docs, as a test param."""
    params = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for n, match in enumerate(_RUNNABLE.finditer(text), start=1):
            params.append(pytest.param(match.group(1), id=f"{doc}#{n}"))
    return params


def test_readme_has_its_quick_start_marked() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # .ci/run relies on these two lines staying first
    assert readme.splitlines()[2:4] == [
        "Set up: `pip install -e '.[dev]'`",
        "Run the tests: `pytest`",
    ]
    quick_start, async_start = _RUNNABLE.findall(
        readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    )
    assert len(quick_start.splitlines()) <= 22
    assert "AsyncDataLayer" in async_start and "asyncio.run" in async_start


@pytest.mark.parametrize("code", runnable_snippets())
def test_doc_snippet_runs_as_written(code: str, pg_url: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code + "\n", encoding="utf-8")
    result = run_example(str(script), env=example_env(pg_url))
    assert result.returncode == 0, result.stdout + result.stderr
    if "charge(42" in code:  # the README quick start prints what it promises
        assert "charged: False" in result.stdout
        assert "'error.kind': 'transient'" in result.stdout
        assert '"event": "operation_failed"' in result.stdout
        assert "968 648" not in result.stdout
        assert "phone='79686484488'" in result.stdout


# --- decorate_new_method.py, and `errorkit logs summary` on its output ------------------


@pytest.fixture(scope="module")
def decorate_run(pg_url: str) -> subprocess.CompletedProcess[str]:
    result = run_example("examples/decorate_new_method.py", env=example_env(pg_url))
    assert result.returncode == 0, result.stderr
    return result


def test_decorate_new_method_reports_each_failure_once(
    decorate_run: subprocess.CompletedProcess[str],
) -> None:
    lines = json_lines(decorate_run.stdout)
    # stdout carries only JSON log lines; the remarks go to stderr
    assert all(raw.startswith("{") for raw in decorate_run.stdout.splitlines() if raw)
    failed = [(x["operation"], x["error_kind"]) for x in lines if x["event"] == "operation_failed"]
    assert failed == [("import_client", "timeout"), ("lapsed_clients", "internal")]
    rejected = [x["operation"] for x in lines if x["event"] == "operation_rejected"]
    assert rejected == ["lapsed_clients"]
    assert all(x.get("service") == "decorate-new-method-example" for x in lines)
    # no DSN: nothing sent, and the example shows the events that would have been
    shown = [r for r in decorate_run.stderr.splitlines() if "Sentry event (not sent" in r]
    assert len(shown) == 2
    assert "'error.kind': 'timeout'" in shown[0]
    assert "'operation': 'import_client'" in shown[0]
    assert "lapsed_clients returned []" in decorate_run.stderr
    # phone numbers never reach the log, nor the events it shows
    for phone in ("79680000101", "79680000102"):
        assert phone not in decorate_run.stdout
        assert phone not in decorate_run.stderr


def test_errorkit_logs_summary_reads_a_real_run(
    decorate_run: subprocess.CompletedProcess[str],
) -> None:
    """The log reader that replaced examples/read_json_logs.py, on an example's output."""
    errorkit_script = str(Path(sys.executable).parent / "errorkit")
    result = subprocess.run(
        [errorkit_script, "logs", "summary", "--json"],
        input=decorate_run.stdout,
        capture_output=True,
        text=True,
        env=example_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    failed = {(f["operation"], f["error_kind"]): f["count"] for f in summary["failures"]}
    assert failed == {("import_client", "timeout"): 1, ("lapsed_clients", "internal"): 1}
    assert [(r["operation"], r["count"]) for r in summary["rejections"]] == [("lapsed_clients", 1)]
    assert summary["unparsed"] == 0


# --- testing_with_errorkit.py ----------------------------------------------------------


def test_testing_with_errorkit_passes_under_pytest() -> None:
    result = run_example(
        "-m",
        "pytest",
        "examples/testing_with_errorkit.py",
        "-q",
        "-p",
        "no:cacheprovider",
        env=example_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


# --- service_using_facade.py -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """The example service under uvicorn on a free loopback port."""

    def __init__(
        self,
        pg_url: str,
        folder: Path,
        script: str = "examples/service_using_facade.py",
        env: dict[str, str] | None = None,
    ) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.out = folder / "service.out"
        self.err = folder / "service.err"
        with self.out.open("w") as stdout, self.err.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, script, "--port", str(port)],
                cwd=ROOT,
                env={**example_env(pg_url), **(env or {})},
                stdout=stdout,
                stderr=stderr,
            )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + _STARTUP_DEADLINE_S
        while True:
            assert self.proc.poll() is None, self.err.read_text()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no answer:\n" + self.err.read_text()
            time.sleep(0.2)

    def stop(self) -> list[dict[str, Any]]:
        """Shut the service down as Ctrl-C does (lifespan included); its JSON log lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return json_lines(self.out.read_text())


@pytest.fixture
def service(pg_url: str, tmp_path: Path) -> Iterator[Service]:
    running = Service(pg_url, tmp_path)
    try:
        running.wait_until_up()
        yield running
    finally:
        running.stop()


def test_service_using_facade(service: Service) -> None:
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        saved = client.put(
            "/companies/990002", json={"title": "Example Salon", "phone": "8 (968) 648-44-88"}
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["phone"] == "79686484488"
        assert client.get("/companies/990002").json()["title"] == "Example Salon"
        assert client.get("/companies/990003").status_code == 404
        assert client.get("/companies/990002/services").json() == []
        assert client.get("/clients/by-phone/89686484488?company_id=990002").status_code == 404

        assert client.put("/companies/990002", content=b"not json").status_code == 400
        misspelt = client.put("/companies/990002", json={"titel": "Typo Salon"})
        assert misspelt.status_code == 400
        assert "titel" in misspelt.json()["message"]
        assert client.get("/clients/by-phone/89686484488?company_id=abc").status_code == 400

        bad = client.get("/clients/by-phone/call-me-maybe", headers={"X-Request-ID": "req-400"})
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid"
        assert bad.headers["x-request-id"] == "req-400"

        crash = client.get("/debug/fail", headers={"X-Request-ID": "req-500"})
        assert crash.status_code == 500
        assert crash.headers["x-request-id"] == "req-500"
        assert crash.json() == {"error": "internal_error", "request_id": "req-500"}

    lines = service.stop()
    assert service.proc.returncode == 0, service.err.read_text()
    # The phone the requests carried (typed and stored forms) reaches no log line.
    logged = service.out.read_text() + service.err.read_text()
    assert "648-44-88" not in logged and "9686484488" not in logged
    (saved_line,) = [x for x in lines if x["event"] == "company_saved"]
    assert saved_line["method"] == "PUT" and saved_line["request_id"]
    rejected = [x for x in lines if x["event"] == "operation_rejected"]
    assert [x["operation"] for x in rejected] == ["upsert_company", "get_client_by_phone"]
    assert rejected[1]["request_id"] == "req-400"
    (failed,) = [x for x in lines if x["event"] == "operation_failed"]
    assert failed["component"] == "http"
    assert failed["operation"] == "GET /debug/fail"
    assert failed["request_id"] == "req-500"


# --- fastapi_service.py, with a real Sentry endpoint on loopback --------------------------


class SentryStub:
    """A loopback HTTP server standing for Sentry: keeps the events of each envelope."""

    def __init__(self) -> None:
        import http.server

        events = self.events = []  # type: list[dict[str, Any]]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                events.extend(envelope_events(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public@127.0.0.1:{self.server.server_address[1]}/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def envelope_events(body: bytes) -> list[dict[str, Any]]:
    """The ``event`` items of a Sentry envelope (header line, then header + payload items)."""
    events = []
    rest = body.split(b"\n", 1)[1] if b"\n" in body else b""
    while rest.strip():
        header_line, rest = rest.split(b"\n", 1)
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :].lstrip(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        if header.get("type") == "event":
            events.append(json.loads(payload))
    return events


def test_fastapi_service(pg_url: str, tmp_path: Path) -> None:
    sentry = SentryStub()
    service = Service(
        pg_url,
        tmp_path,
        "examples/fastapi_service.py",
        env={"SENTRY_DSN": sentry.dsn, "SENTRY_TRACES_SAMPLE_RATE": "0"},
    )
    try:
        service.wait_until_up()
        with httpx.Client(base_url=service.base_url, timeout=30) as client:
            saved = client.put("/companies/990012", json={"title": "Async Salon"})
            assert saved.status_code == 200, saved.text
            found = client.get("/companies/990012")
            assert found.status_code == 200
            assert found.json()["title"] == "Async Salon"
            missing = client.get("/companies/990013")
            assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
            bad = client.get("/companies/0", headers={"X-Request-ID": "req-400"})
            assert bad.status_code == 400
            assert bad.json()["error"] == "invalid"
            assert bad.headers["x-request-id"] == "req-400"
            down = client.get("/debug/db-timeout", headers={"X-Request-ID": "req-503"})
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"
            assert down.json() == {"error": "unavailable", "kind": "timeout"}
            crash = client.get("/debug/fail", headers={"X-Request-ID": "req-500"})
            assert crash.status_code == 500
            assert crash.headers["content-type"] == "application/json"
            assert crash.json() == {"error": "internal_error", "request_id": "req-500"}
        lines = service.stop()
    finally:
        service.stop()
        sentry.close()
    assert service.proc.returncode == 0, service.err.read_text()
    # One event and one error line per failure; the 400 and the 404 make none.
    events = sorted(sentry.events, key=lambda e: e["tags"]["operation"])
    assert [(e["tags"]["component"], e["tags"]["operation"]) for e in events] == [
        ("http", "GET /debug/fail"),
        ("database", "transaction"),
    ]
    assert [e["contexts"]["errorkit"]["log_context"]["request_id"] for e in events] == [
        "req-500",
        "req-503",
    ]
    failed = sorted(
        (x["component"], x["request_id"]) for x in lines if x["event"] == "operation_failed"
    )
    assert failed == [("database", "req-503"), ("http", "req-500")]
    rejected = [x for x in lines if x["event"] == "operation_rejected"]
    assert [(x["operation"], x["request_id"]) for x in rejected] == [("get_company", "req-400")]
    # Neither uvicorn nor Starlette wrote a traceback of their own.
    assert "Traceback" not in service.err.read_text()
