"""Typed rows: one frozen dataclass per domain table, fields = the table's columns.

Defaults mirror the column defaults, so a model built with only its required
fields writes the same row the database would. ``created_at`` and
``updated_at`` are set by the server; values given for them are not written.

A client's name, phone, e-mail and preferences, a booking's phone and a dialog's
data and messages stay out of ``repr()``: a row logged as a value, or passed to
a reported call, shows its keys and never the person (errorkit's scrubber masks
phones and e-mails in text, but cannot tell a name from any other word).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "Booking",
    "Client",
    "Company",
    "DialogContext",
    "Service",
    "Staff",
    "StaffSchedule",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Company:
    company_id: int
    title: str
    timezone: str | None = None
    phone: str | None = None
    is_active: bool = True
    raw_data: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    yclients_id: int
    company_id: int
    name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    last_visit_date: dt.date | None = None
    visit_count: int = 0
    tags: list[str] = field(default_factory=list)
    preferences: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    yclients_id: int
    company_id: int
    title: str
    category_id: int | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    duration: int | None = None
    is_active: bool = True
    weight: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Staff:
    yclients_id: int
    company_id: int
    name: str
    specialization: str | None = None
    is_active: bool = True
    rating: float | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffSchedule:
    yclients_staff_id: int
    company_id: int
    date: dt.date
    staff_name: str | None = None
    is_working: bool = True
    work_start: dt.time | None = None
    work_end: dt.time | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    yclients_record_id: int
    company_id: int
    datetime: dt.datetime
    client_yclients_id: int | None = None
    client_phone: str | None = field(default=None, repr=False)
    staff_id: int | None = None
    service_ids: list[int] = field(default_factory=list)
    status: str = "active"
    cost: Decimal | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogContext:
    user_id: str
    company_id: int
    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    messages: list[Any] = field(default_factory=list, repr=False)
    last_activity: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
