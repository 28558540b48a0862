"""The installed ``datalayer`` console script, run in a subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import test_whatsapp
from test_whatsapp import seed_keys

from datalayer import Database
from datalayer._console import Console, ProgressBar
from datalayer.cli import main

_SCRIPT = shutil.which("datalayer", path=str(Path(sys.executable).parent)) or shutil.which(
    "datalayer"
)
COMMAND = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "datalayer"]

#: The WhatsApp tables emptied before and after (test_whatsapp's fixture).
wa_db = test_whatsapp.wa_db

_CONNECTION_VARIABLES = (
    "DATABASE_URL",
    "TEST_DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "SENTRY_DSN",
    "NO_COLOR",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONNECTION_VARIABLES}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def pg_env(pg_url: str) -> dict[str, str]:
    return _env(DATABASE_URL=pg_url)


def test_help_lists_every_command() -> None:
    result = run("--help", env=_env())
    assert result.returncode == 0
    for command in ("migrate", "demo", "serve", "health", "whatsapp"):
        assert command in result.stdout
    whatsapp = run("whatsapp", "--help", env=_env())
    assert whatsapp.returncode == 0
    assert "cleanup" in whatsapp.stdout
    assert "health" in whatsapp.stdout


def test_a_bad_flag_exits_2() -> None:
    result = run("--no-such-flag", env=_env())
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["whatsapp"],
        ["whatsapp", "cleanup", "--batch-size", "0"],
        ["whatsapp", "health", "--threshold", "-3"],
        ["serve", "--port", "eighty"],
        ["pool"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage:" in captured.err


def test_migrate_twice(pg_env: dict[str, str], db: Database) -> None:
    first = run("migrate", env=pg_env)
    assert first.returncode == 0, first.stderr
    second = run("migrate", "--json", env=pg_env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"applied": []}
    third = run("migrate", env=pg_env)
    assert third.stdout.strip() == "database is up to date"


def test_health_json_parses(pg_env: dict[str, str], wa_db: Database) -> None:
    result = run("health", "--json", env=pg_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "ok"
    assert report["database"]["ok"] is True
    assert report["whatsapp"]["status"] == "healthy"
    assert "pool" in report
    human = run("health", env=pg_env)
    assert human.returncode == 0
    assert "database" in human.stdout
    assert "\033[" not in human.stdout  # not a terminal: no colour


def test_whatsapp_health_exit_codes(pg_env: dict[str, str], wa_db: Database) -> None:
    healthy = run("whatsapp", "health", "--json", env=pg_env)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["status"] == "healthy"
    seed_keys(wa_db, 600, expired=True, session_prefix="cli", key_type="session")
    critical = run("whatsapp", "health", "--json", env=pg_env)
    assert critical.returncode == 1
    assert json.loads(critical.stdout)["status"] == "critical"
    human = run("whatsapp", "health", env=pg_env)
    assert human.returncode == 1
    assert "critical" in human.stdout
    assert "600" in human.stdout


def test_whatsapp_cleanup_dry_run_then_real(pg_env: dict[str, str], wa_db: Database) -> None:
    seed_keys(wa_db, 120, expired=True, session_prefix="cli", key_type="session")
    dry = run("whatsapp", "cleanup", "--dry-run", env=pg_env)
    assert dry.returncode == 0, dry.stderr
    assert "120" in dry.stdout
    dry_json = run("whatsapp", "cleanup", "--dry-run", "--json", env=pg_env)
    assert json.loads(dry_json.stdout)["deleted"] == 120
    with wa_db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM whatsapp_keys").fetchone()
    assert row == (120,)
    real = run("whatsapp", "cleanup", "--json", "--batch-size", "50", env=pg_env)
    assert real.returncode == 0, real.stderr
    result = json.loads(real.stdout)
    assert result["deleted"] == 120
    assert result["batches"] == 3
    assert result["dry_run"] is False


def test_unreachable_database_exits_1(tmp_path: Path) -> None:
    env = _env(
        DATABASE_URL=(
            "host=127.0.0.1 port=1 dbname=nothing user=nobody password=Sup3rS3cret"
            " connect_timeout=1"
        ),
        POSTGRES_POOL_TIMEOUT="1",
    )
    result = run("health", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "error"
    assert report["database"] == {"ok": False, "error": "transient"}
    whatsapp = run("whatsapp", "health", "--json", env=env)
    assert whatsapp.returncode == 1
    assert json.loads(whatsapp.stdout)["status"] == "error"
    cleanup = run("whatsapp", "cleanup", env=env)
    assert cleanup.returncode == 1
    assert cleanup.stdout == ""
    assert "failed" in cleanup.stderr
    human = run("health", env=env)
    assert human.returncode == 1
    for output in (result, whatsapp, cleanup, human):
        assert "Sup3rS3cret" not in output.stdout + output.stderr  # nor in the log lines


@pytest.mark.slow
def test_demo_runs_on_the_embedded_server(tmp_path: Path) -> None:
    env = _env(
        DATALAYER_DATA_DIR=str(tmp_path / "pgdata"),
        HOME=str(tmp_path / "home"),
    )
    result = run("demo", env=env, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "operation_rejected" in out
    assert "operation_failed" in out
    assert "Sentry event" in out
    for method in ("get_client_by_phone", "upsert_company", "get_staff_schedules"):
        assert method in out


# --- terminal output helpers (in-process) -------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Console(_Terminal()).colour is True
    assert Console(io.StringIO()).colour is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert Console(_Terminal()).colour is False
    monkeypatch.setenv("NO_COLOR", "")
    assert Console(_Terminal()).colour is True


def test_table_aligns_columns_and_right_aligns_numbers() -> None:
    out = io.StringIO()
    Console(out).table(["key type", "keys"], [("pre-key", 7), ("app-state-sync-key", 1200)])
    lines = out.getvalue().splitlines()
    assert lines[0] == "key type            keys"
    assert lines[1] == "------------------  ----"
    assert lines[2] == "pre-key                7"
    assert lines[3] == "app-state-sync-key  1200"


def test_progress_bar_draws_only_on_a_terminal() -> None:
    piped = io.StringIO()
    with ProgressBar("work", stream=piped) as bar:
        bar(0, 10)
        bar(10, 10)
    assert piped.getvalue() == ""
    terminal = _Terminal()
    with ProgressBar("work", stream=terminal, width=10) as bar:
        bar(0, 4)
        bar(4, 4)
    assert terminal.getvalue().endswith("\rwork [##########] 4/4\n")


def test_serve_answers_health(pg_env: dict[str, str], db: Database) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [*COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=pg_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = None
        for _ in range(400):
            if process.poll() is not None:
                break
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response is not None, process.communicate(timeout=10)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
