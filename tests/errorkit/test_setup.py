"""setup() and errorkit.instrument: .env, structlog, Sentry from the environment."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

import errorkit
from errorkit import captured
from errorkit._config import settings
from errorkit._sentry import before_send

REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def forget_env(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make monkeypatch remove these at teardown even if setup() (dotenv) sets them."""
    for name in names:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


class Boom(Exception):
    pass


def test_dotenv_loads_without_overriding_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ERRORKIT_SLOW_MS=123\nERRORKIT_REPR_LIMIT=77\n")
    forget_env(monkeypatch, "ERRORKIT_REPR_LIMIT")
    set_env(monkeypatch, ERRORKIT_SLOW_MS="7")
    errorkit.setup(env_file=env_file)
    assert os.environ["ERRORKIT_SLOW_MS"] == "7"
    assert settings.slow_ms == 7
    assert os.environ["ERRORKIT_REPR_LIMIT"] == "77"
    assert settings.repr_limit == 77


def test_json_lines_on_stdout_with_level_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, ERRORKIT_LOG_LEVEL="debug")
    errorkit.setup(env_file=None)

    @captured("svc", "op", reraise=False)
    def f(fail: bool) -> None:
        if fail:
            raise Boom("x")

    f(False)
    f(True)
    errorkit.get_logger("mine").info("hello", answer=42)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["operation_completed", "operation_failed", "hello"]
    for line in lines:
        assert {"timestamp", "level", "event"} <= line.keys()
    assert lines[1]["level"] == "error"
    assert lines[1]["exception"][0]["exc_type"] == "Boom"
    assert lines[2]["logger"] == "mine" and lines[2]["answer"] == 42


def test_level_warning_drops_info_and_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, ERRORKIT_LOG_LEVEL="warning")
    errorkit.setup(env_file=None)
    log = errorkit.get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [json.loads(x)["event"] for x in capsys.readouterr().out.splitlines()] == ["loud"]
    assert settings.debug is False


def test_console_renderer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, ERRORKIT_LOG_FORMAT="console")
    errorkit.setup(env_file=None)

    @captured("svc", "op", reraise=False)
    def f() -> None:
        raise Boom("with +7 968 648 44 88")

    f()
    out = capsys.readouterr().out
    assert "operation_failed" in out
    assert not out.lstrip().startswith("{")
    assert "968 648" not in out


def test_log_stream_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    errorkit.setup(env_file=None, log_stream="stderr")
    errorkit.get_logger().warning("to_stderr")
    captured_io = capsys.readouterr()
    assert captured_io.out == ""
    assert json.loads(captured_io.err)["event"] == "to_stderr"


def test_stdlib_log_records_become_scrubbed_json_lines_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    errorkit.setup(env_file=None, log_stream="stderr")
    errorkit.setup(env_file=None, log_stream="stderr", slow_ms=900)  # a second call: no 2nd handler
    logging.getLogger("psycopg.pool").warning(
        "error connecting in %r: postgresql://app:hunter2@db/x", "pool"
    )
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert (line["logger"], line["level"]) == ("psycopg.pool", "warning")
    assert "timestamp" in line and line["event"].startswith("error connecting in 'pool'")
    assert "hunter2" not in lines[0]


def test_bad_variable_raises_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, ERRORKIT_LOG_LEVEL="loud")
    with pytest.raises(ValueError, match="ERRORKIT_LOG_LEVEL"):
        errorkit.setup(env_file=None)
    set_env(monkeypatch, ERRORKIT_LOG_LEVEL="info", SENTRY_DSN="http://k@127.0.0.1:9/1")
    set_env(monkeypatch, SENTRY_TRACES_SAMPLE_RATE="lots")
    with pytest.raises(ValueError, match="SENTRY_TRACES_SAMPLE_RATE"):
        errorkit.setup(env_file=None)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("ERRORKIT_SLOW_MS", "abc"),
        ("ERRORKIT_SLOW_MS", "-1"),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5"),
        ("SENTRY_PROFILES_SAMPLE_RATE", "nan"),
    ],
)
def test_bad_number_raises_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    set_env(monkeypatch, SENTRY_DSN=f"http://key@127.0.0.1:{closed_port()}/1", **{name: raw})
    with pytest.raises(ValueError, match=name):
        errorkit.setup(env_file=None)
    assert not sentry_sdk.get_client().is_active()


def test_sentry_initialised_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"http://public@127.0.0.1:{closed_port()}/1"
    set_env(
        monkeypatch,
        SENTRY_DSN=dsn,
        SENTRY_ENVIRONMENT="staging",
        SENTRY_RELEASE="v1.2.3",
        SERVICE_NAME="booking-bot",
        SENTRY_PROFILES_SAMPLE_RATE="0",
    )
    errorkit.setup(env_file=None)
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert client.dsn == dsn
    options = client.options
    assert options["environment"] == "staging"
    assert options["release"] == "v1.2.3"
    assert options["server_name"] == "booking-bot"
    assert options["traces_sample_rate"] == 0.1
    assert options["before_send"] is before_send
    assert client.should_send_default_pii() is False
    logging_integration = client.get_integration(LoggingIntegration)
    assert logging_integration is not None
    assert logging_integration._handler is None  # no event_level: log lines never become events


def test_setup_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SENTRY_DSN=f"http://public@127.0.0.1:{closed_port()}/1")
    errorkit.setup(env_file=None)
    first = sentry_sdk.get_client()
    import structlog

    config = structlog.get_config()
    errorkit.setup(env_file=None)
    assert sentry_sdk.get_client() is first
    assert structlog.get_config()["processors"] == config["processors"]


def test_without_dsn_nothing_is_sent_and_everything_works() -> None:
    errorkit.setup(env_file=None)
    assert not sentry_sdk.get_client().is_active()

    @captured("svc", reraise=False, default=5)
    def f() -> int:
        raise Boom

    assert f() == 5


def test_sentry_enabled_false_keeps_sentry_off(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, SENTRY_DSN="http://public@127.0.0.1:9/1", SENTRY_ENABLED="false")
    errorkit.setup(env_file=None)
    assert not sentry_sdk.get_client().is_active()


def test_unreachable_sentry_never_changes_what_the_caller_gets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, SENTRY_DSN=f"http://public@127.0.0.1:{closed_port()}/1")
    errorkit.setup(env_file=None)
    assert sentry_sdk.get_client().is_active()
    error = Boom("down")

    @captured("svc", "soft", reraise=False, default_factory=list)
    def soft() -> list[int]:
        raise error

    @captured("svc", "hard")
    def hard() -> None:
        raise error

    @captured("svc", "fine")
    def fine() -> int:
        return 42

    for _ in range(3):
        assert soft() == []
        with pytest.raises(Boom) as info:
            hard()
        assert info.value is error
        assert fine() == 42
    sentry_sdk.flush(timeout=2)


def test_stdlib_logging_integration_does_not_create_events() -> None:
    from errorkit.testing import capture_events

    with capture_events() as events:
        try:
            raise Boom("legacy")
        except Boom:
            logging.getLogger("legacy").error("plain stdlib error", exc_info=True)
    assert events == []


def run_instrumented(cwd: Path, env: dict[str, str]) -> str:
    code = "import errorkit.instrument, sentry_sdk; print(sentry_sdk.get_client().dsn)"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "ERRORKIT_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip().splitlines()[-1]


def test_import_instrument_reads_dotenv_and_environment_wins(tmp_path: Path) -> None:
    from_file = "http://filekey@127.0.0.1:9/1"
    from_env = "http://envkey@127.0.0.1:9/2"
    (tmp_path / ".env").write_text(f"SENTRY_DSN={from_file}\nSENTRY_PROFILES_SAMPLE_RATE=0\n")
    assert run_instrumented(tmp_path, {}) == from_file
    assert run_instrumented(tmp_path, {"SENTRY_DSN": from_env}) == from_env


def test_capture_events_reuses_the_initialised_clients_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from errorkit.testing import capture_events

    set_env(monkeypatch, SENTRY_DSN=f"http://public@127.0.0.1:{closed_port()}/1")
    set_env(monkeypatch, SENTRY_ENVIRONMENT="ci")
    errorkit.setup(env_file=None)
    real = sentry_sdk.get_client()

    @captured("svc", reraise=False)
    def f(phone: str) -> None:
        raise Boom(phone)

    with capture_events() as events:
        f("+7 968 648 44 88")
    assert sentry_sdk.get_client() is real
    (event,) = events
    assert event["environment"] == "ci"
    s = json.dumps(event)
    assert "968 648" not in s, s[s.index("968 648") - 400 :]


def test_held_back_counts_are_reported_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import errorkit
        from errorkit import captured

        errorkit.setup(env_file=None, log_lines_per_minute=2)

        @captured("svc", "op", reraise=False)
        def f():
            raise RuntimeError("down")

        for _ in range(5):
            f()
        """
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "ERRORKIT_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == [
        "operation_failed",
        "operation_failed",
        "operation_failures_suppressed",
    ]
    assert lines[-1]["suppressed"] == 3
