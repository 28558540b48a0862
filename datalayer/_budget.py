"""The connection budget: what every service's pool may open, against what the server allows.

Each service's pool may grow to ``max_size`` connections; ``expected_services``
of them share one server. The plan fits when ``expected_services x max_size``
stays within ``max_connections`` less the slots the server keeps for
superusers (and, on PostgreSQL 16+, for ``pg_use_reserved_connections``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import psycopg

__all__ = [
    "IN_USE_SQL",
    "SETTINGS_SQL",
    "STATUS_BY_VERDICT",
    "Budget",
    "Verdict",
    "budget_from_rows",
    "check_budget",
    "check_plan",
]

Verdict = Literal["under", "at", "over"]
#: The health status a verdict shows as (``pool budget`` and ``health`` alike).
STATUS_BY_VERDICT: dict[str, str] = {"under": "ok", "at": "warning", "over": "critical"}

SETTINGS_SQL = """
SELECT name, setting::int
FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
"""

IN_USE_SQL = """
SELECT coalesce(nullif(application_name, ''), '(none)') AS application, count(*)::int
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
"""


class _BudgetSource(Protocol):
    """A ``Database``: it reads its own budget through one pooled connection."""

    def budget(
        self, *, expected_services: int | None = ..., max_size: int | None = ...
    ) -> Budget: ...


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
    source: psycopg.Connection[Any] | _BudgetSource,
    *,
    expected_services: int,
    max_size: int,
) -> Budget:
    """Read the server's limits and current connections, and judge the planned pools.

    ``source`` is an open psycopg connection or a ``Database`` (one pooled
    connection is borrowed for two catalogue reads; ``AsyncDatabase.budget()``
    is the awaitable form).
    """
    if not isinstance(source, psycopg.Connection):
        return source.budget(expected_services=expected_services, max_size=max_size)
    check_plan(expected_services, max_size)
    settings = source.execute(SETTINGS_SQL).fetchall()
    in_use = source.execute(IN_USE_SQL).fetchall()
    return budget_from_rows(
        settings, in_use, expected_services=expected_services, max_size=max_size
    )


def check_plan(expected_services: object, max_size: object) -> None:
    """Refuse a plan that is not two positive integers (before any SQL)."""
    for name, value in (("expected_services", expected_services), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def budget_from_rows(
    settings_rows: Iterable[Sequence[Any]],
    in_use_rows: Iterable[Sequence[Any]],
    *,
    expected_services: int,
    max_size: int,
) -> Budget:
    """The verdict from the rows of ``SETTINGS_SQL`` and ``IN_USE_SQL``."""
    settings = {str(row[0]): int(row[1]) for row in settings_rows}
    in_use = {str(row[0]): int(row[1]) for row in in_use_rows}
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
