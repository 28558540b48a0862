"""What ``DataLayer`` and ``AsyncDataLayer`` share: policies, validation, the health report.

Every public facade method is decorated with :func:`read` or :func:`write`, which
build the ``@captured("data-layer", <method name>, ...)`` boundary and record
the declared policy on the method, so the shared shape (report once, then
re-raise or return the default) lives here, not in 20 try/excepts:

- writes (``upsert_*``) re-raise every failure;
- reads (``get_*``, ``search_*``) report a failure and return ``None`` or
  ``[]``, except with ``strict=True`` or inside ``db.transaction()``, where
  they re-raise: a failed statement dooms the transaction, and the caller
  must know;
- :class:`~datalayer.errors.ValidationError` is expected: it is raised
  before any SQL, logged as a warning and never sent to Sentry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

from datalayer._metrics import operation_observer
from datalayer.errors import ValidationError
from datalayer.validation import (
    Normalizer,
    normalize_phone,
    redact_arguments,
    validate_date,
    validate_id,
    validate_optional_id,
    validate_payload,
    validate_payloads,
    validate_text,
)
from errorkit import Failure, captured, classify

__all__ = [
    "CLIENT_FIELDS",
    "COMPANY_FIELDS",
    "COMPONENT",
    "CONTEXT_FIELDS",
    "POLICY_ATTRIBUTE",
    "SCHEDULE_FIELDS",
    "SERVICE_FIELDS",
    "HealthReport",
    "Policy",
    "check_timeout",
    "company_arg",
    "health_report",
    "payload_row",
    "payload_rows",
    "read",
    "write",
]

COMPONENT = "data-layer"
POLICY_ATTRIBUTE = "__datalayer_policy__"

_F = TypeVar("_F", bound=Callable[..., Any])


# --- policy --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Policy:
    """What a facade method does on failure, recorded on the method by its decorator.

    ``kind`` is ``"write"`` (re-raise) or ``"read"`` (return ``default_factory()``,
    else None, unless strict or inside a transaction). ``redacted`` names the
    arguments replaced by a description in reports (they may hold names, phones
    or chat messages).
    """

    kind: Literal["read", "write"]
    operation: str
    default_factory: Callable[[], Any] | None = None
    redacted: tuple[str, ...] = ()


def _read_reraises(failure: Failure) -> bool:
    """A read re-raises in strict mode and inside a transaction, else returns its default."""
    facade = failure.instance
    strict = getattr(facade, "strict", None)
    if not isinstance(strict, bool):
        return True
    return strict or bool(facade.db.in_transaction())


def _declare(
    kind: Literal["read", "write"],
    *,
    default_factory: Callable[[], Any] | None = None,
    redact: tuple[str, ...] = (),
) -> Callable[[_F], _F]:
    def decorate(fn: _F) -> _F:
        operation = fn.__name__
        boundary = captured(
            COMPONENT,
            operation,
            reraise=True if kind == "write" else _read_reraises,
            default_factory=default_factory,
            expected=(ValidationError,),
            extra=redact_arguments(redact) if redact else None,
            observer=operation_observer(operation),
        )
        setattr(fn, POLICY_ATTRIBUTE, Policy(kind, operation, default_factory, redact))
        return boundary(fn)

    return decorate


def read(
    *, default_factory: Callable[[], Any] | None = None, redact: tuple[str, ...] = ()
) -> Callable[[_F], _F]:
    """Declare a read: report a failure, then return ``default_factory()`` (else None).

    Re-raises instead when the facade is strict or the database is inside a
    transaction. *redact* names arguments replaced by a description in reports.
    """
    return _declare("read", default_factory=default_factory, redact=redact)


def write(*, redact: tuple[str, ...] = ()) -> Callable[[_F], _F]:
    """Declare a write: report a failure, then re-raise it."""
    return _declare("write", redact=redact)


def company_arg(company_id: object) -> int | None:
    """The company argument: ``None`` means any company (never ``company_id IS NULL``)."""
    return validate_optional_id(company_id, name="company_id")


def _id(name: str) -> Normalizer:
    return lambda value: validate_id(value, name=name)


def _phone(value: object) -> str:
    return normalize_phone(value, name="phone")


def _day(value: object) -> date:
    return validate_date(value, name="date")


def _user_id(value: object) -> str:
    return validate_text(value, name="user_id")


# Fields of upsert payloads normalised before they are stored (a phone is stored as
# E.164 digits, so that the lookups by phone find it). The conflict keys and the
# fields come from the repository's table and row type.
CLIENT_FIELDS: dict[str, Normalizer] = {
    "yclients_id": _id("yclients_id"),
    "company_id": _id("company_id"),
    "phone": _phone,
}
COMPANY_FIELDS: dict[str, Normalizer] = {"company_id": _id("company_id"), "phone": _phone}
SERVICE_FIELDS: dict[str, Normalizer] = {
    "yclients_id": _id("yclients_id"),
    "company_id": _id("company_id"),
}
SCHEDULE_FIELDS: dict[str, Normalizer] = {
    "yclients_staff_id": _id("yclients_staff_id"),
    "company_id": _id("company_id"),
    "date": _day,
}
CONTEXT_FIELDS: dict[str, Normalizer] = {"user_id": _user_id, "company_id": _id("company_id")}


def payload_row(
    repository: Any, payload: object, fields: Mapping[str, Normalizer], name: str
) -> dict[str, Any]:
    table = repository.table
    return validate_payload(
        payload, repository.row_type, keys=table.key, normalizers=fields, name=name
    )


def payload_rows(
    repository: Any, payloads: object, fields: Mapping[str, Normalizer], name: str
) -> list[dict[str, Any]]:
    table = repository.table
    return validate_payloads(
        payloads, repository.row_type, keys=table.key, normalizers=fields, name=name
    )


# --- health --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HealthReport:
    """The database as the facade sees it: reachable within the timeout or not."""

    healthy: bool
    latency_ms: float | None
    pool: dict[str, Any]
    error_kind: str | None = None
    timeout_s: float = 0.0
    checked_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``checked_at`` in ISO 8601)."""
        data = dataclasses.asdict(self)
        data["checked_at"] = self.checked_at.isoformat()
        return data


def check_timeout(timeout: object) -> float:
    """``health_check``'s timeout: a positive number of seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValidationError("timeout must be a positive number of seconds")
    return float(timeout)


def health_report(
    error: BaseException | None, latency: float | None, pool: dict[str, Any], timeout: float
) -> HealthReport:
    """The report ``health_check`` returns, from its boundary's outcome."""
    return HealthReport(
        healthy=error is None,
        latency_ms=latency,
        pool=pool,
        error_kind=None if error is None else classify(error),
        timeout_s=timeout,
    )
