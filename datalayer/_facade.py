"""The facade services call: 20 methods, one boundary, a policy declared on each.

Every public method is decorated with :func:`_read` or :func:`_write`, which
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

import concurrent.futures
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

from datalayer._database import Database
from datalayer._metrics import operation_observer
from datalayer.errors import ValidationError
from datalayer.models import Booking, Client, Company, DialogContext, Service, Staff, StaffSchedule
from datalayer.repositories import (
    BaseRepository,
    BookingsRepository,
    ClientsRepository,
    CompaniesRepository,
    DialogContextsRepository,
    ServicesRepository,
    StaffRepository,
    StaffSchedulesRepository,
)
from datalayer.validation import (
    MAX_LIMIT,
    Normalizer,
    clamp_limit,
    normalize_phone,
    redact_arguments,
    validate_date,
    validate_flag,
    validate_id,
    validate_optional_date,
    validate_optional_flag,
    validate_optional_id,
    validate_order_by,
    validate_payload,
    validate_payloads,
    validate_text,
)
from errorkit import Failure, captured, classify

__all__ = ["POLICY_ATTRIBUTE", "DataLayer", "HealthReport", "Policy"]

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
    if not isinstance(facade, DataLayer):
        return True
    return facade.strict or facade.db.in_transaction()


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


def _read(
    *, default_factory: Callable[[], Any] | None = None, redact: tuple[str, ...] = ()
) -> Callable[[_F], _F]:
    """Declare a read: report a failure, then return ``default_factory()`` (else None).

    Re-raises instead when the facade is strict or the database is inside a
    transaction. *redact* names arguments replaced by a description in reports.
    """
    return _declare("read", default_factory=default_factory, redact=redact)


def _write(*, redact: tuple[str, ...] = ()) -> Callable[[_F], _F]:
    """Declare a write: report a failure, then re-raise it."""
    return _declare("write", redact=redact)


def _company(company_id: object) -> int | None:
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
_CLIENT_FIELDS: dict[str, Normalizer] = {
    "yclients_id": _id("yclients_id"),
    "company_id": _id("company_id"),
    "phone": _phone,
}
_COMPANY_FIELDS: dict[str, Normalizer] = {"company_id": _id("company_id"), "phone": _phone}
_SERVICE_FIELDS: dict[str, Normalizer] = {
    "yclients_id": _id("yclients_id"),
    "company_id": _id("company_id"),
}
_SCHEDULE_FIELDS: dict[str, Normalizer] = {
    "yclients_staff_id": _id("yclients_staff_id"),
    "company_id": _id("company_id"),
    "date": _day,
}
_CONTEXT_FIELDS: dict[str, Normalizer] = {"user_id": _user_id, "company_id": _id("company_id")}


def _row(
    repository: BaseRepository[Any], payload: object, fields: Mapping[str, Normalizer], name: str
) -> dict[str, Any]:
    table = repository.table
    return validate_payload(
        payload, repository.row_type, keys=table.key, normalizers=fields, name=name
    )


def _rows(
    repository: BaseRepository[Any], payloads: object, fields: Mapping[str, Normalizer], name: str
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


# --- the facade ----------------------------------------------------------------


class DataLayer:
    """The data layer's service-facing API.

    Build one per process on a :class:`~datalayer.Database` and share it.
    ``strict=True`` makes reads re-raise database failures instead of
    returning ``None`` / ``[]`` (after reporting them either way).
    """

    def __init__(self, db: Database, *, strict: bool = False) -> None:
        self._db = db
        self._strict = validate_flag(strict, name="strict")
        self._companies = CompaniesRepository(db)
        self._clients = ClientsRepository(db)
        self._services = ServicesRepository(db)
        self._staff = StaffRepository(db)
        self._schedules = StaffSchedulesRepository(db)
        self._bookings = BookingsRepository(db)
        self._contexts = DialogContextsRepository(db)

    @property
    def db(self) -> Database:
        """The :class:`~datalayer.Database` this facade reads and writes."""
        return self._db

    @property
    def strict(self) -> bool:
        """True when reads re-raise database failures instead of returning None / []."""
        return self._strict

    def __repr__(self) -> str:
        return f"DataLayer(strict={self._strict})"

    # --- dialog contexts ---

    @_read(redact=("user_id",))
    def get_dialog_context(
        self, user_id: str, company_id: int | None = None
    ) -> DialogContext | None:
        """A user's dialog context in one salon; without ``company_id``, the latest active."""
        return self._contexts.find_for_user(
            validate_text(user_id, name="user_id"), _company(company_id)
        )

    @_write(redact=("context",))
    def upsert_dialog_context(self, context: DialogContext | Mapping[str, Any]) -> DialogContext:
        """Insert or replace a user's dialog context (keyed by ``user_id`` and ``company_id``)."""
        return self._contexts.upsert(_row(self._contexts, context, _CONTEXT_FIELDS, "context"))

    # --- clients ---

    @_read(redact=("phone",))
    def get_client_by_phone(self, phone: str, company_id: int | None = None) -> Client | None:
        """The client with this phone, as people type it (normalised to E.164 digits first).

        Without ``company_id`` any salon's client matches; the latest updated wins.
        """
        return self._clients.find_by_phone(normalize_phone(phone), _company(company_id))

    @_read()
    def get_client_by_id(self, client_id: int, company_id: int | None = None) -> Client | None:
        """The client with this booking-system id (``yclients_id``), or None."""
        return self._clients.find_by_id(
            validate_id(client_id, name="client_id"), _company(company_id)
        )

    @_read(default_factory=list)
    def get_client_appointments(
        self,
        client_id: int,
        company_id: int | None = None,
        *,
        limit: int = 100,
        order_by: str = "datetime",
        descending: bool = True,
    ) -> list[Booking]:
        """A client's bookings (by ``client_yclients_id``), newest first by default."""
        return self._bookings.find_for_client(
            validate_id(client_id, name="client_id"),
            _company(company_id),
            limit=clamp_limit(limit),
            order_by=validate_order_by(order_by, self._bookings.table.columns),
            descending=validate_flag(descending, name="descending"),
        )

    @_read(default_factory=list)
    def get_upcoming_appointments(self, client_id: int, company_id: int) -> list[Booking]:
        """A client's active bookings from now on, soonest first."""
        return self._bookings.find_upcoming_for_client(
            validate_id(client_id, name="client_id"),
            validate_id(company_id, name="company_id"),
            limit=MAX_LIMIT,
        )

    @_read(default_factory=list, redact=("name",))
    def search_clients_by_name(self, company_id: int, name: str, limit: int = 100) -> list[Client]:
        """A salon's clients whose name contains ``name`` (case-insensitive, literal)."""
        return self._clients.search_by_name(
            validate_id(company_id, name="company_id"),
            validate_text(name, name="name"),
            limit=clamp_limit(limit),
        )

    @_write(redact=("client",))
    def upsert_client(self, client: Client | Mapping[str, Any]) -> Client:
        """Insert or update one client (phone normalised); return the stored row."""
        return self._clients.upsert(_row(self._clients, client, _CLIENT_FIELDS, "client"))

    @_write(redact=("clients",))
    def upsert_clients(self, clients: Iterable[Client | Mapping[str, Any]]) -> int:
        """Insert or update many clients atomically (last wins per key); return rows written."""
        rows = _rows(self._clients, clients, _CLIENT_FIELDS, "clients")
        return self._clients.bulk_upsert(rows) if rows else 0

    # --- staff ---

    @_read()
    def get_staff_by_id(self, staff_id: int, company_id: int) -> Staff | None:
        """The staff member with this booking-system id in this salon, or None."""
        return self._staff.find_by_id(
            validate_id(staff_id, name="staff_id"), validate_id(company_id, name="company_id")
        )

    @_read(default_factory=list)
    def get_staff(self, company_id: int, include_inactive: bool = False) -> list[Staff]:
        """A salon's staff by name; active ones only unless ``include_inactive``."""
        return self._staff.list_for_company(
            validate_id(company_id, name="company_id"),
            include_inactive=validate_flag(include_inactive, name="include_inactive"),
        )

    @_read()
    def get_staff_schedule(
        self, staff_id: int, date: date | str, company_id: int | None = None
    ) -> StaffSchedule | None:
        """One staff member's schedule on one day (``staff_id`` is ``yclients_staff_id``)."""
        # ``staff_id`` is the booking system's id: the ``yclients_staff_id`` column.
        return self._schedules.find_for_staff_on(
            validate_id(staff_id, name="staff_id"),
            validate_date(date, name="date"),
            _company(company_id),
        )

    @_read(default_factory=list)
    def get_staff_schedules(
        self,
        company_id: int,
        *,
        staff_id: int | None = None,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        is_working: bool | None = None,
        limit: int = 100,
    ) -> list[StaffSchedule]:
        """A salon's schedules by day then staff, filtered; both dates are included."""
        start = validate_optional_date(date_from, name="date_from")
        end = validate_optional_date(date_to, name="date_to")
        if start is not None and end is not None and start > end:
            raise ValidationError("date_from must not be after date_to")
        return self._schedules.find_in_range(
            validate_id(company_id, name="company_id"),
            staff_id=validate_optional_id(staff_id, name="staff_id"),
            date_from=start,
            date_to=end,
            is_working=validate_optional_flag(is_working, name="is_working"),
            limit=clamp_limit(limit),
        )

    @_write(redact=("schedules",))
    def upsert_staff_schedules(self, schedules: Iterable[StaffSchedule | Mapping[str, Any]]) -> int:
        """Insert or update schedule days atomically (last wins per key); return rows written."""
        rows = _rows(self._schedules, schedules, _SCHEDULE_FIELDS, "schedules")
        return self._schedules.bulk_upsert(rows) if rows else 0

    # --- services ---

    @_read(default_factory=list)
    def get_services(self, company_id: int, include_inactive: bool = False) -> list[Service]:
        """A salon's services, heaviest first; active ones only unless ``include_inactive``."""
        return self._services.list_for_company(
            validate_id(company_id, name="company_id"),
            include_inactive=validate_flag(include_inactive, name="include_inactive"),
        )

    @_read()
    def get_service_by_id(self, service_id: int, company_id: int | None = None) -> Service | None:
        """The service with this booking-system id (``yclients_id``), or None."""
        return self._services.find_by_id(
            validate_id(service_id, name="service_id"), _company(company_id)
        )

    @_read(default_factory=list)
    def get_services_by_category(self, company_id: int, category_id: int) -> list[Service]:
        """A salon's active services in one category, by title."""
        return self._services.find_by_category(
            validate_id(company_id, name="company_id"),
            validate_id(category_id, name="category_id"),
        )

    @_write(redact=("services",))
    def upsert_services(self, services: Iterable[Service | Mapping[str, Any]]) -> int:
        """Insert or update services atomically (last wins per key); return rows written."""
        rows = _rows(self._services, services, _SERVICE_FIELDS, "services")
        return self._services.bulk_upsert(rows) if rows else 0

    # --- companies ---

    @_read()
    def get_company(self, company_id: int) -> Company | None:
        """The salon with this id, or None."""
        return self._companies.find_by_id(validate_id(company_id, name="company_id"))

    @_write(redact=("company",))
    def upsert_company(self, company: Company | Mapping[str, Any]) -> Company:
        """Insert or update a salon (phone normalised); return the stored row."""
        return self._companies.upsert(_row(self._companies, company, _COMPANY_FIELDS, "company"))

    # --- health (not one of the 20: it never raises, it describes) ---

    def health_check(self, *, timeout: float = 2.0) -> HealthReport:
        """Ping the database within *timeout* seconds and return latency and pool figures.

        A failure (or the timeout) is reported once through its own boundary
        (operation ``health_check``) and described in the report, never raised.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError("timeout must be a positive number of seconds")
        latency: float | None = None
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="health-check")
        with captured(COMPONENT, "health_check", reraise=False) as boundary:
            try:
                latency = executor.submit(self._db.ping).result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"database ping took longer than {timeout}s") from None
            finally:
                executor.shutdown(wait=False, cancel_futures=True)
        error = boundary.error
        return HealthReport(
            healthy=error is None,
            latency_ms=latency,
            pool=self._pool_stats(),
            error_kind=None if error is None else classify(error),
            timeout_s=float(timeout),
        )

    # --- helpers ---

    def _pool_stats(self) -> dict[str, Any]:
        try:
            return dict(self._db.stats())
        except Exception:  # figures are a courtesy; a closed pool has none
            return {}
