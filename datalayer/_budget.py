"""The connection budget: what every service's pool may open, against what the server allows.

Each service's pool may grow to ``max_size`` connections; ``expected_services``
of them share one server. The plan fits when ``expected_services x max_size``
stays within ``max_connections`` less the slots the server keeps for
superusers (and, on PostgreSQL 16+, for ``pg_use_reserved_connections``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import psycopg

if TYPE_CHECKING:
    from datalayer._console import Console

__all__ = [
    "STATUS_BY_VERDICT",
    "Budget",
    "Verdict",
    "add_budget_command",
    "check_budget",
    "positive_int",
]

Verdict = Literal["under", "at", "over"]
#: The health status a verdict shows as (``pool budget`` and ``health`` alike).
STATUS_BY_VERDICT: dict[str, str] = {"under": "ok", "at": "warning", "over": "critical"}

_SETTINGS_SQL = """
SELECT name, setting::int
FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
"""

_IN_USE_SQL = """
SELECT coalesce(nullif(application_name, ''), '(none)') AS application, count(*)::int
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
"""


class _ConnectionSource(Protocol):
    """Anything that lends a connection the way ``Database.connection()`` does."""

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


@dataclass(frozen=True)
class Budget:
    """The server's connection slots against the planned pools, read from the real server.

    ``planned`` is ``expected_services x max_size``; ``available`` is
    ``max_connections - reserved``. ``in_use_by_application`` counts the
    client connections open right now, by ``application_name`` (every
    datalayer connection carries ``SERVICE_NAME``); behind PgBouncer those are
    PgBouncer's server connections, named after the last client that used them.
    """

    max_connections: int
    reserved: int
    available: int
    in_use_by_application: dict[str, int] = field(hash=False)
    in_use_total: int
    expected_services: int
    max_size: int
    planned: int
    verdict: Verdict
    message: str

    @property
    def spare(self) -> int:
        """Slots left once every planned pool is full (negative when over budget)."""
        return self.available - self.planned

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the CLI's ``--json`` and the health API use it)."""
        data = asdict(self)
        data["spare"] = self.spare
        return data


def check_budget(
    source: psycopg.Connection[Any] | _ConnectionSource,
    *,
    expected_services: int,
    max_size: int,
) -> Budget:
    """Read the server's limits and current connections, and judge the planned pools.

    ``source`` is an open psycopg connection or a ``Database`` (one pooled
    connection is borrowed for two catalogue reads).
    """
    for name, value in (("expected_services", expected_services), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    with _borrow(source) as conn:
        settings = dict(conn.execute(_SETTINGS_SQL).fetchall())
        in_use = {str(app): int(count) for app, count in conn.execute(_IN_USE_SQL).fetchall()}
    max_connections = int(settings["max_connections"])
    reserved = int(settings.get("superuser_reserved_connections", 0)) + int(
        settings.get("reserved_connections", 0)
    )
    return _judge(
        max_connections=max_connections,
        reserved=reserved,
        in_use_by_application=in_use,
        expected_services=expected_services,
        max_size=max_size,
    )


def _judge(
    *,
    max_connections: int,
    reserved: int,
    in_use_by_application: dict[str, int],
    expected_services: int,
    max_size: int,
) -> Budget:
    available = max(max_connections - reserved, 0)
    planned = expected_services * max_size
    in_use_total = sum(in_use_by_application.values())
    verdict: Verdict
    if planned < available:
        verdict = "under"
    elif planned == available:
        verdict = "at"
    else:
        verdict = "over"
    plan = f"{expected_services} services x {max_size} connections = {planned} planned"
    limits = f"{available} available (max_connections {max_connections} - {reserved} reserved)"
    if verdict == "under":
        message = f"under budget: {plan}, {limits}, {available - planned} spare"
    elif verdict == "at":
        message = f"at budget: {plan} = {limits}, no spare slot for maintenance or a new service"
    else:
        message = (
            f"over budget: {plan} > {limits} by {planned - available}; "
            "lower POSTGRES_MAX_CONNECTIONS, raise max_connections, or put PgBouncer in front"
        )
    return Budget(
        max_connections=max_connections,
        reserved=reserved,
        available=available,
        in_use_by_application=in_use_by_application,
        in_use_total=in_use_total,
        expected_services=expected_services,
        max_size=max_size,
        planned=planned,
        verdict=verdict,
        message=message,
    )


@contextmanager
def _borrow(
    source: psycopg.Connection[Any] | _ConnectionSource,
) -> Iterator[psycopg.Connection[Any]]:
    if isinstance(source, psycopg.Connection):
        yield source
    else:
        with source.connection() as conn:
            yield conn


# --- `datalayer pool budget` ---------------------------------------------------------


def add_budget_command(commands: Any) -> None:
    """Register ``budget`` on the ``datalayer pool`` subparsers (``cli.POOL_REGISTRARS``)."""
    parser = commands.add_parser(
        "budget",
        help="the server's connection slots against services x pool size",
        description=(
            "Reads max_connections, reserved slots and the connections in use (by "
            "application_name) from the server and judges the planned pools. "
            "Exit code 1 when the plan is over budget."
        ),
    )
    parser.add_argument(
        "--services",
        type=positive_int,
        default=None,
        help="services sharing the server (default POSTGRES_EXPECTED_SERVICES)",
    )
    parser.add_argument(
        "--max-size",
        type=positive_int,
        default=None,
        help="pool max size per service (default POSTGRES_MAX_CONNECTIONS)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_run_budget_command)


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer of at least 1 (every ``datalayer`` command uses it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _run_budget_command(args: argparse.Namespace, console: Console) -> int:
    from datalayer._database import Database

    db = Database.from_env()
    try:
        budget = check_budget(
            db,
            expected_services=args.services or db.settings.expected_services,
            max_size=args.max_size or db.settings.max_connections,
        )
    finally:
        db.close()
    if args.json:
        console.print(json.dumps(budget.as_dict(), indent=2))
    else:
        _print_budget(budget, console)
    return 1 if budget.verdict == "over" else 0


def _print_budget(budget: Budget, console: Console) -> None:
    status = STATUS_BY_VERDICT[budget.verdict]
    console.heading(f"connection budget: {console.status(status)} ({budget.verdict})")
    console.print(budget.message)
    console.print()
    console.fields(
        {
            "max_connections": budget.max_connections,
            "reserved": budget.reserved,
            "available": budget.available,
            "planned": (
                f"{budget.planned} ({budget.expected_services} services x {budget.max_size})"
            ),
            "spare": budget.spare,
            "in use now": budget.in_use_total,
        }
    )
    if budget.in_use_by_application:
        console.print()
        console.table(["application_name", "connections"], budget.in_use_by_application.items())
