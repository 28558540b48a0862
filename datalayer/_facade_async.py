"""The facade services call: 20 methods, one boundary, a policy declared on each.

``AsyncDataLayer`` is the source; ``DataLayer`` (``_facade.py``) is generated
from it by ``tools/async_to_sync.py``, so both have the same methods, arguments,
validation, policies and boundary names (Sentry groups their failures
together). What does no I/O lives in ``_policy.py``.
"""

from __future__ import annotations

# <async>
import asyncio

# </async>
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from datalayer._database_async import AsyncDatabase
from datalayer._policy import (
    CLIENT_FIELDS,
    COMPANY_FIELDS,
    COMPONENT,
    CONTEXT_FIELDS,
    SCHEDULE_FIELDS,
    SERVICE_FIELDS,
    HealthReport,
    check_timeout,
    company_arg,
    health_report,
    payload_row,
    payload_rows,
    read,
    write,
)
from datalayer.errors import ValidationError
from datalayer.models import Booking, Client, Company, DialogContext, Service, Staff, StaffSchedule
from datalayer.repositories.bookings_async import AsyncBookingsRepository
from datalayer.repositories.clients_async import AsyncClientsRepository
from datalayer.repositories.companies_async import AsyncCompaniesRepository
from datalayer.repositories.dialog_contexts_async import AsyncDialogContextsRepository
from datalayer.repositories.services_async import AsyncServicesRepository
from datalayer.repositories.staff_async import AsyncStaffRepository
from datalayer.repositories.staff_schedules_async import AsyncStaffSchedulesRepository
from datalayer.validation import (
    MAX_LIMIT,
    clamp_limit,
    normalize_phone,
    validate_date,
    validate_flag,
    validate_id,
    validate_optional_date,
    validate_optional_flag,
    validate_optional_id,
    validate_order_by,
    validate_text,
)
from errorkit import captured

__all__ = ["AsyncDataLayer"]


class AsyncDataLayer:
    """The data layer's service-facing API.

    Build one per process on an :class:`~datalayer.AsyncDatabase` and share it.
    ``strict=True`` makes reads re-raise database failures instead of
    returning ``None`` / ``[]`` (after reporting them either way).
    """

    def __init__(self, db: AsyncDatabase, *, strict: bool = False) -> None:
        self._db = db
        self._strict = validate_flag(strict, name="strict")
        self._companies = AsyncCompaniesRepository(db)
        self._clients = AsyncClientsRepository(db)
        self._services = AsyncServicesRepository(db)
        self._staff = AsyncStaffRepository(db)
        self._schedules = AsyncStaffSchedulesRepository(db)
        self._bookings = AsyncBookingsRepository(db)
        self._contexts = AsyncDialogContextsRepository(db)

    @property
    def db(self) -> AsyncDatabase:
        """The :class:`~datalayer.AsyncDatabase` this facade reads and writes."""
        return self._db

    @property
    def strict(self) -> bool:
        """True when reads re-raise database failures instead of returning None / []."""
        return self._strict

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strict={self._strict})"

    # --- dialog contexts ---

    @read(redact=("user_id",))
    async def get_dialog_context(
        self, user_id: str, company_id: int | None = None
    ) -> DialogContext | None:
        """A user's dialog context in one salon; without ``company_id``, the latest active."""
        return await self._contexts.find_for_user(
            validate_text(user_id, name="user_id"), company_arg(company_id)
        )

    @write(redact=("context",))
    async def upsert_dialog_context(
        self, context: DialogContext | Mapping[str, Any]
    ) -> DialogContext:
        """Insert or replace a user's dialog context (keyed by ``user_id`` and ``company_id``)."""
        return await self._contexts.upsert(
            payload_row(self._contexts, context, CONTEXT_FIELDS, "context")
        )

    # --- clients ---

    @read(redact=("phone",))
    async def get_client_by_phone(self, phone: str, company_id: int | None = None) -> Client | None:
        """The client with this phone, as people type it (normalised to E.164 digits first).

        Without ``company_id`` any salon's client matches; the latest updated wins.
        """
        return await self._clients.find_by_phone(normalize_phone(phone), company_arg(company_id))

    @read()
    async def get_client_by_id(
        self, client_id: int, company_id: int | None = None
    ) -> Client | None:
        """The client with this booking-system id (``yclients_id``), or None."""
        return await self._clients.find_by_id(
            validate_id(client_id, name="client_id"), company_arg(company_id)
        )

    @read(default_factory=list)
    async def get_client_appointments(
        self,
        client_id: int,
        company_id: int | None = None,
        *,
        limit: int = 100,
        order_by: str = "datetime",
        descending: bool = True,
    ) -> list[Booking]:
        """A client's bookings (by ``client_yclients_id``), newest first by default."""
        return await self._bookings.find_for_client(
            validate_id(client_id, name="client_id"),
            company_arg(company_id),
            limit=clamp_limit(limit),
            order_by=validate_order_by(order_by, self._bookings.table.columns),
            descending=validate_flag(descending, name="descending"),
        )

    @read(default_factory=list)
    async def get_upcoming_appointments(self, client_id: int, company_id: int) -> list[Booking]:
        """A client's active bookings from now on, soonest first."""
        return await self._bookings.find_upcoming_for_client(
            validate_id(client_id, name="client_id"),
            validate_id(company_id, name="company_id"),
            limit=MAX_LIMIT,
        )

    @read(default_factory=list, redact=("name",))
    async def search_clients_by_name(
        self, company_id: int, name: str, limit: int = 100
    ) -> list[Client]:
        """A salon's clients whose name contains ``name`` (case-insensitive, literal)."""
        return await self._clients.search_by_name(
            validate_id(company_id, name="company_id"),
            validate_text(name, name="name"),
            limit=clamp_limit(limit),
        )

    @write(redact=("client",))
    async def upsert_client(self, client: Client | Mapping[str, Any]) -> Client:
        """Insert or update one client (phone normalised); return the stored row."""
        return await self._clients.upsert(
            payload_row(self._clients, client, CLIENT_FIELDS, "client")
        )

    @write(redact=("clients",))
    async def upsert_clients(self, clients: Iterable[Client | Mapping[str, Any]]) -> int:
        """Insert or update many clients atomically (last wins per key); return rows written."""
        rows = payload_rows(self._clients, clients, CLIENT_FIELDS, "clients")
        return await self._clients.bulk_upsert(rows) if rows else 0

    # --- staff ---

    @read()
    async def get_staff_by_id(self, staff_id: int, company_id: int) -> Staff | None:
        """The staff member with this booking-system id in this salon, or None."""
        return await self._staff.find_by_id(
            validate_id(staff_id, name="staff_id"), validate_id(company_id, name="company_id")
        )

    @read(default_factory=list)
    async def get_staff(self, company_id: int, include_inactive: bool = False) -> list[Staff]:
        """A salon's staff by name; active ones only unless ``include_inactive``."""
        return await self._staff.list_for_company(
            validate_id(company_id, name="company_id"),
            include_inactive=validate_flag(include_inactive, name="include_inactive"),
        )

    @read()
    async def get_staff_schedule(
        self, staff_id: int, date: date | str, company_id: int | None = None
    ) -> StaffSchedule | None:
        """One staff member's schedule on one day (``staff_id`` is ``yclients_staff_id``)."""
        # ``staff_id`` is the booking system's id: the ``yclients_staff_id`` column.
        return await self._schedules.find_for_staff_on(
            validate_id(staff_id, name="staff_id"),
            validate_date(date, name="date"),
            company_arg(company_id),
        )

    @read(default_factory=list)
    async def get_staff_schedules(
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
        return await self._schedules.find_in_range(
            validate_id(company_id, name="company_id"),
            staff_id=validate_optional_id(staff_id, name="staff_id"),
            date_from=start,
            date_to=end,
            is_working=validate_optional_flag(is_working, name="is_working"),
            limit=clamp_limit(limit),
        )

    @write(redact=("schedules",))
    async def upsert_staff_schedules(
        self, schedules: Iterable[StaffSchedule | Mapping[str, Any]]
    ) -> int:
        """Insert or update schedule days atomically (last wins per key); return rows written."""
        rows = payload_rows(self._schedules, schedules, SCHEDULE_FIELDS, "schedules")
        return await self._schedules.bulk_upsert(rows) if rows else 0

    # --- services ---

    @read(default_factory=list)
    async def get_services(self, company_id: int, include_inactive: bool = False) -> list[Service]:
        """A salon's services, heaviest first; active ones only unless ``include_inactive``."""
        return await self._services.list_for_company(
            validate_id(company_id, name="company_id"),
            include_inactive=validate_flag(include_inactive, name="include_inactive"),
        )

    @read()
    async def get_service_by_id(
        self, service_id: int, company_id: int | None = None
    ) -> Service | None:
        """The service with this booking-system id (``yclients_id``), or None."""
        return await self._services.find_by_id(
            validate_id(service_id, name="service_id"), company_arg(company_id)
        )

    @read(default_factory=list)
    async def get_services_by_category(self, company_id: int, category_id: int) -> list[Service]:
        """A salon's active services in one category, by title."""
        return await self._services.find_by_category(
            validate_id(company_id, name="company_id"),
            validate_id(category_id, name="category_id"),
        )

    @write(redact=("services",))
    async def upsert_services(self, services: Iterable[Service | Mapping[str, Any]]) -> int:
        """Insert or update services atomically (last wins per key); return rows written."""
        rows = payload_rows(self._services, services, SERVICE_FIELDS, "services")
        return await self._services.bulk_upsert(rows) if rows else 0

    # --- companies ---

    @read()
    async def get_company(self, company_id: int) -> Company | None:
        """The salon with this id, or None."""
        return await self._companies.find_by_id(validate_id(company_id, name="company_id"))

    @write(redact=("company",))
    async def upsert_company(self, company: Company | Mapping[str, Any]) -> Company:
        """Insert or update a salon (phone normalised); return the stored row."""
        return await self._companies.upsert(
            payload_row(self._companies, company, COMPANY_FIELDS, "company")
        )

    # --- health (not one of the 20: it never raises, it describes) ---

    async def health_check(self, *, timeout: float = 2.0) -> HealthReport:
        """Ping the database within *timeout* seconds and return latency and pool figures.

        A failure (or the timeout) is reported once through its own boundary
        (operation ``health_check``) and described in the report, never raised.
        """
        seconds = check_timeout(timeout)
        latency: float | None = None
        async with captured(COMPONENT, "health_check", reraise=False) as boundary:
            # <async>
            try:
                async with asyncio.timeout(seconds):
                    latency = await self._db.ping(timeout=seconds)
            except TimeoutError:
                raise TimeoutError(f"database ping took longer than {seconds}s") from None
            # </async>
            # <sync>
            # latency = self._db.ping(timeout=seconds)
            # </sync>
        return health_report(boundary.error, latency, self._pool_stats(), seconds)

    # --- helpers ---

    def _pool_stats(self) -> dict[str, Any]:
        try:
            return dict(self._db.stats())
        except Exception:  # figures are a courtesy; a closed pool has none
            return {}
