"""Plain PostgreSQL repositories, one per domain table."""

from datalayer.repositories.base import BaseRepository
from datalayer.repositories.bookings import BookingsRepository
from datalayer.repositories.clients import ClientsRepository
from datalayer.repositories.companies import CompaniesRepository
from datalayer.repositories.dialog_contexts import DialogContextsRepository
from datalayer.repositories.services import ServicesRepository
from datalayer.repositories.staff import StaffRepository
from datalayer.repositories.staff_schedules import StaffSchedulesRepository

__all__ = [
    "BaseRepository",
    "BookingsRepository",
    "ClientsRepository",
    "CompaniesRepository",
    "DialogContextsRepository",
    "ServicesRepository",
    "StaffRepository",
    "StaffSchedulesRepository",
]
