"""Plain PostgreSQL repositories, one per domain table, sync and async.

The async classes (``Async*Repository``) are the source; the sync ones are
generated from them by ``tools/async_to_sync.py``.
"""

from datalayer.repositories._sql import Table
from datalayer.repositories.base import BaseRepository
from datalayer.repositories.base_async import AsyncBaseRepository
from datalayer.repositories.bookings import BookingsRepository
from datalayer.repositories.bookings_async import AsyncBookingsRepository
from datalayer.repositories.clients import ClientsRepository
from datalayer.repositories.clients_async import AsyncClientsRepository
from datalayer.repositories.companies import CompaniesRepository
from datalayer.repositories.companies_async import AsyncCompaniesRepository
from datalayer.repositories.dialog_contexts import DialogContextsRepository
from datalayer.repositories.dialog_contexts_async import AsyncDialogContextsRepository
from datalayer.repositories.services import ServicesRepository
from datalayer.repositories.services_async import AsyncServicesRepository
from datalayer.repositories.staff import StaffRepository
from datalayer.repositories.staff_async import AsyncStaffRepository
from datalayer.repositories.staff_schedules import StaffSchedulesRepository
from datalayer.repositories.staff_schedules_async import AsyncStaffSchedulesRepository

__all__ = [
    "AsyncBaseRepository",
    "AsyncBookingsRepository",
    "AsyncClientsRepository",
    "AsyncCompaniesRepository",
    "AsyncDialogContextsRepository",
    "AsyncServicesRepository",
    "AsyncStaffRepository",
    "AsyncStaffSchedulesRepository",
    "BaseRepository",
    "BookingsRepository",
    "ClientsRepository",
    "CompaniesRepository",
    "DialogContextsRepository",
    "ServicesRepository",
    "StaffRepository",
    "StaffSchedulesRepository",
    "Table",
]
