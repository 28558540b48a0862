"""The seven domain tables as the repositories see them: columns, types, conflict keys.

Shared by the sync and async repositories, so both build the same (cached) SQL.
"""

from __future__ import annotations

from datalayer.repositories._sql import Table

__all__ = [
    "BOOKINGS",
    "CLIENTS",
    "COMPANIES",
    "DIALOG_CONTEXTS",
    "SERVICES",
    "STAFF",
    "STAFF_SCHEDULES",
]

BOOKINGS = Table(
    "bookings",
    {
        "yclients_record_id": "bigint",
        "company_id": "bigint",
        "datetime": "timestamptz",
        "client_yclients_id": "bigint",
        "client_phone": "text",
        "staff_id": "bigint",
        "service_ids": "integer[]",
        "status": "text",
        "cost": "numeric",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("yclients_record_id", "company_id"),
)

CLIENTS = Table(
    "clients",
    {
        "yclients_id": "bigint",
        "company_id": "bigint",
        "name": "text",
        "phone": "text",
        "email": "text",
        "last_visit_date": "date",
        "visit_count": "integer",
        "tags": "text[]",
        "preferences": "jsonb",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("yclients_id", "company_id"),
)

COMPANIES = Table(
    "companies",
    {
        "company_id": "bigint",
        "title": "text",
        "timezone": "text",
        "phone": "text",
        "is_active": "boolean",
        "raw_data": "jsonb",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("company_id",),
)

DIALOG_CONTEXTS = Table(
    "dialog_contexts",
    {
        "user_id": "text",
        "company_id": "bigint",
        "state": "text",
        "data": "jsonb",
        "messages": "jsonb",
        "last_activity": "timestamptz",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("user_id", "company_id"),
    now_if_null=frozenset({"last_activity"}),
)

SERVICES = Table(
    "services",
    {
        "yclients_id": "bigint",
        "company_id": "bigint",
        "title": "text",
        "category_id": "bigint",
        "price_min": "numeric",
        "price_max": "numeric",
        "duration": "integer",
        "is_active": "boolean",
        "weight": "integer",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("yclients_id", "company_id"),
)

STAFF = Table(
    "staff",
    {
        "yclients_id": "bigint",
        "company_id": "bigint",
        "name": "text",
        "specialization": "text",
        "is_active": "boolean",
        "rating": "double precision",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("yclients_id", "company_id"),
)

STAFF_SCHEDULES = Table(
    "staff_schedules",
    {
        "yclients_staff_id": "bigint",
        "company_id": "bigint",
        "date": "date",
        "staff_name": "text",
        "is_working": "boolean",
        "work_start": "time",
        "work_end": "time",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    key=("yclients_staff_id", "date", "company_id"),
)
