"""The connection budget, judged against the real server's max_connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from datalayer import Budget, check_budget


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True, application_name="budget-test") as conn:
        yield conn


def _server_slots(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    rows = conn.execute(
        "SELECT name, setting::int FROM pg_settings WHERE name IN "
        "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
    ).fetchall()
    settings = dict(rows)
    reserved = settings["superuser_reserved_connections"] + settings.get("reserved_connections", 0)
    return settings["max_connections"], reserved


def test_reads_the_servers_limits(conn: psycopg.Connection[Any]) -> None:
    max_connections, reserved = _server_slots(conn)
    budget = check_budget(conn, expected_services=7, max_size=3)
    assert budget.max_connections == max_connections
    assert budget.reserved == reserved
    assert budget.available == max_connections - reserved
    assert budget.planned == 21


@pytest.mark.parametrize(
    ("offset", "verdict"),
    [(-1, "under"), (0, "at"), (1, "over")],
)
def test_verdict_against_the_real_server(
    conn: psycopg.Connection[Any], offset: int, verdict: str
) -> None:
    max_connections, reserved = _server_slots(conn)
    available = max_connections - reserved
    budget = check_budget(conn, expected_services=1, max_size=available + offset)
    assert budget.verdict == verdict
    assert budget.planned == available + offset
    assert budget.spare == -offset
    assert budget.message.startswith(f"{verdict} budget")


def test_verdict_varies_the_number_of_services(conn: psycopg.Connection[Any]) -> None:
    available = check_budget(conn, expected_services=1, max_size=1).available
    # Pools of 3 (the default): how many services fit, exactly.
    fitting = available // 3
    assert check_budget(conn, expected_services=fitting, max_size=3).verdict in {"under", "at"}
    over = check_budget(conn, expected_services=fitting + 1, max_size=3)
    assert over.verdict == "over"
    assert str(over.planned) in over.message
    assert str(over.available) in over.message
    assert "POSTGRES_MAX_CONNECTIONS" in over.message


def test_counts_connections_by_application_name(pg_url: str, conn: psycopg.Connection[Any]) -> None:
    name = f"budget-probe-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(psycopg.connect(pg_url, autocommit=True, application_name=name))
        budget = check_budget(conn, expected_services=7, max_size=3)
    assert budget.in_use_by_application[name] == 3
    assert budget.in_use_by_application["budget-test"] >= 1
    assert budget.in_use_total == sum(budget.in_use_by_application.values())
    assert budget.in_use_total >= 4


@pytest.mark.parametrize(
    ("services", "size"),
    [(0, 3), (7, 0), (-1, 3), (True, 3), (7, 2.5)],
)
def test_refuses_nonsense_plans(conn: psycopg.Connection[Any], services: Any, size: Any) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        check_budget(conn, expected_services=services, max_size=size)


def test_as_dict_is_json_ready(conn: psycopg.Connection[Any]) -> None:
    budget = check_budget(conn, expected_services=7, max_size=3)
    data = json.loads(json.dumps(budget.as_dict()))
    assert data["planned"] == 21
    assert data["verdict"] == budget.verdict
    assert data["spare"] == budget.available - 21
    assert isinstance(data["in_use_by_application"], dict)


def test_budget_is_immutable(conn: psycopg.Connection[Any]) -> None:
    budget = check_budget(conn, expected_services=7, max_size=3)
    with pytest.raises(AttributeError):
        budget.planned = 1  # type: ignore[misc]
    assert isinstance(budget, Budget)


def test_database_budget_uses_its_settings(db: Any) -> None:
    budget = db.budget()
    assert isinstance(budget, Budget)
    assert budget.expected_services == db.settings.expected_services
    assert budget.max_size == db.settings.max_connections
    assert budget.planned == db.settings.expected_services * db.settings.max_connections
    assert budget.in_use_by_application.get(db.settings.service_name, 0) >= 1


# --- `datalayer pool budget` -----------------------------------------------------------

_CLI = [sys.executable, "-m", "datalayer", "pool", "budget"]


def _cli(pg_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SENTRY_"))}
    env.update(
        DATABASE_URL=pg_url,
        POSTGRES_EXPECTED_SERVICES="7",
        POSTGRES_MAX_CONNECTIONS="3",
        SERVICE_NAME="budget-cli",
        NO_COLOR="1",
    )
    return subprocess.run(
        [*_CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_json_under_budget_exits_0(pg_url: str) -> None:
    result = _cli(pg_url, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["planned"] == 21
    assert data["verdict"] == "under"
    assert data["in_use_by_application"]["budget-cli"] >= 1


def test_cli_over_budget_exits_1_and_says_why(pg_url: str, conn: psycopg.Connection[Any]) -> None:
    available = check_budget(conn, expected_services=1, max_size=1).available
    result = _cli(pg_url, "--services", str(available), "--max-size", "2")
    assert result.returncode == 1, result.stderr
    assert "over budget" in result.stdout
    assert f"{available * 2} planned" in result.stdout
    assert "max_connections" in result.stdout
    assert "budget-cli" in result.stdout  # the in-use table, by application_name


def test_cli_refuses_a_nonsense_plan_as_usage_error(pg_url: str) -> None:
    result = _cli(pg_url, "--services", "0")
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr
