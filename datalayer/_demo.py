"""``datalayer demo``: a sample salon, every facade method, and failures being reported.

Runs against ``Database.from_env()`` (an embedded PostgreSQL when nothing is
configured): migrates, seeds a salon through the facade (and the bookings
repository, which has no facade writer), calls each of the facade's methods,
then provokes an invalid input and a database failure and prints the log line
and the Sentry event each one produced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from datalayer._config import conninfo_from_env, default_data_dir
from datalayer._console import Console, ProgressBar
from datalayer._database import Database
from datalayer._facade import DataLayer
from datalayer._migrate import migrate
from datalayer._policy import POLICY_ATTRIBUTE
from datalayer.errors import DataLayerError, ValidationError
from datalayer.models import Booking, Client, Company, DialogContext, Service, Staff, StaffSchedule
from datalayer.repositories import BookingsRepository, StaffRepository
from errorkit.testing import capture_events, capture_logs

__all__ = ["run_demo"]

COMPANY_ID = 4242
CLIENTS = 240
STAFF = (
    (501, "Anna Petrova", "hair"),
    (502, "Boris Ivanov", "barber"),
    (503, "Vera Smirnova", "nails"),
    (504, "Gleb Orlov", "massage"),
)
SERVICES = (
    (9001, "Haircut", 10, 1500, 45),
    (9002, "Colouring", 10, 4500, 120),
    (9003, "Beard trim", 20, 800, 30),
    (9004, "Manicure", 30, 1800, 60),
    (9005, "Pedicure", 30, 2200, 75),
    (9006, "Back massage", 40, 3000, 60),
)
FIRST_NAMES = ("Alexei", "Maria", "Ivan", "Olga", "Dmitri", "Elena", "Sergei", "Natalia")
LAST_NAMES = ("Kuznetsov", "Popova", "Volkov", "Sokolova", "Lebedev", "Kozlova")


@contextmanager
def _database(console: Console) -> Iterator[Database]:
    conninfo = conninfo_from_env()
    if conninfo is None:
        console.print(f"database: embedded PostgreSQL in {default_data_dir()}")
    else:
        console.print("database: DATABASE_URL / POSTGRES_* from the environment")
    db = Database.from_env()
    try:
        yield db
    finally:
        db.close()


def _client(n: int) -> Client:
    name = f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[n % len(LAST_NAMES)]}"
    return Client(
        yclients_id=7000 + n,
        company_id=COMPANY_ID,
        name=f"{name} {n}",
        phone=f"7968{n:07d}",
        email=f"client{n}@example.com",
        visit_count=n % 9,
        tags=["demo", "vip"] if n % 10 == 0 else ["demo"],
    )


def seed(dl: DataLayer, db: Database, console: Console) -> None:
    """The sample salon: company, services, staff, two weeks of schedules, clients, bookings."""
    today = date.today()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    chunk = 40
    steps: list[tuple[str, Callable[[], Any]]] = [
        (
            "company",
            lambda: dl.upsert_company(
                Company(
                    company_id=COMPANY_ID,
                    title="Demo Salon",
                    timezone="Europe/Moscow",
                    phone="79680000000",
                    raw_data={"source": "datalayer demo"},
                )
            ),
        ),
        (
            "services",
            lambda: dl.upsert_services(
                [
                    Service(
                        yclients_id=sid,
                        company_id=COMPANY_ID,
                        title=title,
                        category_id=category,
                        price_min=Decimal(price),
                        price_max=Decimal(price) * Decimal("1.5"),
                        duration=minutes,
                    )
                    for sid, title, category, price, minutes in SERVICES
                ]
            ),
        ),
        (
            "staff",
            lambda: StaffRepository(db).bulk_upsert(
                [
                    Staff(yclients_id=sid, company_id=COMPANY_ID, name=name, specialization=spec)
                    for sid, name, spec in STAFF
                ]
            ),
        ),
        (
            "schedules",
            lambda: dl.upsert_staff_schedules(
                [
                    StaffSchedule(
                        yclients_staff_id=sid,
                        company_id=COMPANY_ID,
                        staff_name=name,
                        date=today + timedelta(days=day),
                        is_working=(day + sid) % 7 != 0,
                        work_start=time(10),
                        work_end=time(20),
                    )
                    for sid, name, _ in STAFF
                    for day in range(14)
                ]
            ),
        ),
    ]
    for start in range(0, CLIENTS, chunk):
        batch = [_client(n) for n in range(start, min(start + chunk, CLIENTS))]
        steps.append(("clients", lambda batch=batch: dl.upsert_clients(batch)))  # type: ignore[misc]
    steps.append(
        (
            "bookings",
            lambda: BookingsRepository(db).bulk_upsert(
                [
                    Booking(
                        yclients_record_id=80_000 + n,
                        company_id=COMPANY_ID,
                        client_yclients_id=7000 + n % 20,
                        client_phone=f"7968{n % 20:07d}",
                        staff_id=STAFF[n % len(STAFF)][0],
                        service_ids=[SERVICES[n % len(SERVICES)][0]],
                        datetime=now + timedelta(days=n - 30, hours=n % 8),
                        status="completed" if n < 30 else "active",
                        cost=Decimal(SERVICES[n % len(SERVICES)][3]),
                    )
                    for n in range(60)
                ]
            ),
        )
    )
    steps.append(
        (
            "dialog",
            lambda: dl.upsert_dialog_context(
                DialogContext(
                    user_id="79680000001@c.us",
                    company_id=COMPANY_ID,
                    state="choosing_service",
                    data={"service_id": 9001},
                    messages=[{"role": "user", "text": "Hello, a haircut tomorrow?"}],
                    last_activity=datetime.now(UTC),
                )
            ),
        )
    )
    with ProgressBar("seeding demo salon") as bar:
        bar(0, len(steps))
        for done, (_, step) in enumerate(steps, start=1):
            step()
            bar(done, len(steps))
    console.print(
        f"seeded: 1 company, {len(SERVICES)} services, {len(STAFF)} staff, "
        f"{len(STAFF) * 14} schedule days, {CLIENTS} clients, 60 bookings, 1 dialog"
    )


def facade_calls(dl: DataLayer) -> list[tuple[str, Callable[[], Any]]]:
    """One call of each facade method on the sample salon."""
    today = date.today()
    client = _client(3)
    return [
        ("get_company", lambda: dl.get_company(COMPANY_ID)),
        (
            "upsert_company",
            lambda: dl.upsert_company({"company_id": COMPANY_ID, "title": "Demo Salon"}),
        ),
        ("get_client_by_phone", lambda: dl.get_client_by_phone("8 (968) 000-00-03")),
        ("get_client_by_id", lambda: dl.get_client_by_id(7003, COMPANY_ID)),
        ("search_clients_by_name", lambda: dl.search_clients_by_name(COMPANY_ID, "maria", limit=5)),
        ("upsert_client", lambda: dl.upsert_client(client)),
        ("upsert_clients", lambda: dl.upsert_clients([client, _client(4)])),
        ("get_client_appointments", lambda: dl.get_client_appointments(7003, COMPANY_ID, limit=10)),
        ("get_upcoming_appointments", lambda: dl.get_upcoming_appointments(7003, COMPANY_ID)),
        ("get_staff", lambda: dl.get_staff(COMPANY_ID)),
        ("get_staff_by_id", lambda: dl.get_staff_by_id(501, COMPANY_ID)),
        ("get_staff_schedule", lambda: dl.get_staff_schedule(501, today.isoformat(), COMPANY_ID)),
        (
            "get_staff_schedules",
            lambda: dl.get_staff_schedules(
                COMPANY_ID, date_from=today, date_to=today + timedelta(days=6), is_working=True
            ),
        ),
        (
            "upsert_staff_schedules",
            lambda: dl.upsert_staff_schedules(
                [{"yclients_staff_id": 502, "company_id": COMPANY_ID, "date": today}]
            ),
        ),
        ("get_services", lambda: dl.get_services(COMPANY_ID)),
        ("get_service_by_id", lambda: dl.get_service_by_id(9001)),
        ("get_services_by_category", lambda: dl.get_services_by_category(COMPANY_ID, 30)),
        (
            "upsert_services",
            lambda: dl.upsert_services(
                [{"yclients_id": 9007, "company_id": COMPANY_ID, "title": "Eyebrows"}]
            ),
        ),
        ("get_dialog_context", lambda: dl.get_dialog_context("79680000001@c.us", COMPANY_ID)),
        (
            "upsert_dialog_context",
            lambda: dl.upsert_dialog_context(
                {"user_id": "79680000002@c.us", "company_id": COMPANY_ID, "state": "greeting"}
            ),
        ),
    ]


def _summary(value: Any) -> str:
    if value is None:
        return "None (not found)"
    if isinstance(value, list):
        return f"{len(value)} row(s)"
    if isinstance(value, int):
        return f"{value} row(s) written"
    key = next(
        (
            f"{field}={getattr(value, field)}"
            for field in ("yclients_id", "yclients_staff_id", "user_id", "company_id")
            if hasattr(value, field)
        ),
        "",
    )
    return f"{type(value).__name__}({key})"


def facade_methods() -> list[str]:
    """Every public facade method that wears the boundary."""
    return sorted(
        name
        for name in dir(DataLayer)
        if not name.startswith("_") and hasattr(getattr(DataLayer, name), POLICY_ATTRIBUTE)
    )


def _show_report(
    console: Console, logs: Sequence[Mapping[str, Any]], events: Sequence[Any]
) -> None:
    lines = [line for line in logs if _level(line) in ("warning", "error", "critical")]
    console.print(f"  log lines (warning and above): {len(lines)}")
    for line in lines:
        console.print("    " + json.dumps(_compact(line), default=str, ensure_ascii=False))
    console.print(f"  Sentry events captured: {len(events)}")
    for event in events:
        exception = (event.get("exception") or {}).get("values") or [{}]
        console.print(
            "    "
            + json.dumps(
                {
                    "event_id": event.get("event_id"),
                    "level": event.get("level"),
                    "tags": event.get("tags"),
                    "fingerprint": event.get("fingerprint"),
                    "exception": {
                        "type": exception[-1].get("type"),
                        "value": exception[-1].get("value"),
                    },
                },
                default=str,
                ensure_ascii=False,
            )
        )


def _lines(logs: Sequence[Mapping[str, Any]], event: str) -> int:
    """How many of the captured log lines are *event*: the demo shows exactly one."""
    return sum(1 for line in logs if line.get("event") == event)


def _level(line: Mapping[str, Any]) -> str:
    return str(line.get("level") or line.get("log_level") or "").lower()


def _compact(line: Mapping[str, Any]) -> dict[str, Any]:
    # The structured traceback is long; the demo shows that it is there.
    return {
        key: ("<structured traceback>" if key in ("exception", "exc_info") else value)
        for key, value in line.items()
    }


def provoke_invalid_input(dl: DataLayer, console: Console) -> bool:
    console.heading("\n1. invalid input: get_client_by_phone('call me maybe')")
    with capture_logs() as logs, capture_events() as events:
        try:
            dl.get_client_by_phone("call me maybe")
        except ValidationError as exc:
            console.print(f"  raised ValidationError: {exc}")
        else:
            console.print("  unexpected: no ValidationError")
            return False
    _show_report(console, logs, events)
    console.print("  (expected failures are logged as operation_rejected, never sent to Sentry)")
    return not events and _lines(logs, "operation_rejected") == 1


def provoke_database_failure(dl: DataLayer, db: Database, console: Console) -> bool:
    """A read that waits on a locked table inside a transaction and gives up (55P03)."""
    console.heading(
        "\n2. database failure: get_client_by_id inside a transaction, clients table locked"
    )
    with (
        capture_logs() as logs,
        capture_events() as events,
        db.connection() as locker,
        locker.transaction(),
    ):
        locker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        try:
            with db.transaction() as conn:
                conn.execute("SET LOCAL lock_timeout = '200ms'")
                dl.get_client_by_id(7003, COMPANY_ID)
        except DataLayerError as exc:
            console.print(f"  raised {type(exc).__name__} (sqlstate {exc.sqlstate}): {exc}")
        else:
            console.print("  unexpected: the read did not fail")
            return False
    _show_report(console, logs, events)
    return len(events) == 1 and _lines(logs, "operation_failed") == 1


def run_demo(console: Console) -> bool:
    """The whole demo; True when every step behaved as shown."""
    with _database(console) as db:
        applied = migrate(db)
        console.print(f"migrations applied now: {', '.join(applied) or 'none (up to date)'}")
        dl = DataLayer(db)
        seed(dl, db, console)

        console.heading("\nevery facade method")
        calls = facade_calls(dl)
        rows = []
        ok = True
        for name, call in calls:
            rows.append((name, _summary(call())))
        console.table(["method", "result"], rows)
        missing = sorted(set(facade_methods()) - {name for name, _ in calls})
        if missing:
            console.print(f"not shown by the demo: {', '.join(missing)}")
            ok = False

        ok = provoke_invalid_input(dl, console) and ok
        ok = provoke_database_failure(dl, db, console) and ok
        console.print()
        console.print(console.status("ok") + " demo complete" if ok else console.status("failed"))
        return ok
