"""Add a new data-layer method, and give it the same error behaviour as the facade.

Run it:

    python examples/decorate_new_method.py

It uses DATABASE_URL (or POSTGRES_*), else starts the embedded PostgreSQL. Log
lines are JSON on stdout, the example's own remarks go to stderr, so

    python examples/decorate_new_method.py | errorkit logs summary

summarises the run. With SENTRY_DSN set the failure goes to Sentry; without
it the example shows the event that would have been sent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import errorkit
from datalayer import Database, DataLayer, QueryTimeoutError, ValidationError, migrate
from datalayer.models import Client
from datalayer.repositories import ClientsRepository
from datalayer.validation import validate_id
from errorkit import captured
from errorkit.testing import capture_events

COMPANY_ID = 990_001  # a salon of its own, so the example never touches real rows


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr)


class ClientReports:
    """Reads and writes the facade does not have yet, with the facade's policies.

    The recipe: validate first (a ``ValidationError`` is ``expected``: a warning
    line, no Sentry event, re-raised to the caller), then call a repository.
    Reads return a default after reporting a failure; writes re-raise it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clients = ClientsRepository(db)

    # A read: on a database failure, one report, then [] for the caller.
    @captured(
        "data-layer",
        expected=(ValidationError,),
        reraise=False,
        default_factory=list,
        slow_ms=200,
    )
    def lapsed_clients(self, company_id: int, *, since: date) -> list[Client]:
        """Clients of a salon whose last visit is older than ``since``, oldest first."""
        return self.clients.find_many(
            {
                "company_id": validate_id(company_id, name="company_id"),
                "last_visit_date": {"lt": since},
            },
            order_by="last_visit_date",
            limit=100,
        )

    # A write: reported once, then re-raised (the caller must know it did not happen).
    # Report the row's ids, not the row: it holds a name and a phone number.
    @captured(
        "data-layer",
        expected=(ValidationError,),
        extra=lambda args: {k: args["row"].get(k) for k in ("yclients_id", "company_id")},
    )
    def import_client(self, row: dict[str, Any]) -> Client:
        """Insert or update one client as given by the booking system."""
        return self.clients.upsert(row)


@contextmanager
def events_shown_without_a_dsn() -> Iterator[None]:
    """With no SENTRY_DSN nothing is sent; show what would have been."""
    if os.environ.get("SENTRY_DSN"):
        yield
        return
    with capture_events() as events:
        yield
    for event in events:
        say(
            f"Sentry event (not sent, no SENTRY_DSN): level={event['level']} "
            f"tags={event['tags']} fingerprint={event['fingerprint']}"
        )


def main() -> int:
    errorkit.setup("decorate-new-method-example")
    db = Database.from_env()
    try:
        migrate(db)
        reports = ClientReports(db)
        today = date.today()
        ClientsRepository(db).delete({"company_id": COMPANY_ID})

        say("1. success: two clients imported, one of them lapsed")
        reports.import_client(
            {
                "yclients_id": 1,
                "company_id": COMPANY_ID,
                "name": "Maria Popova",
                "phone": "79680000101",
                "last_visit_date": today - timedelta(days=200),
            }
        )
        reports.import_client(
            {
                "yclients_id": 2,
                "company_id": COMPANY_ID,
                "name": "Ivan Volkov",
                "phone": "79680000102",
                "last_visit_date": today - timedelta(days=3),
            }
        )
        lapsed = reports.lapsed_clients(COMPANY_ID, since=today - timedelta(days=90))
        say(f"   lapsed clients: {[c.yclients_id for c in lapsed]}")

        say("2. expected failure: a bad company id is the caller's problem")
        try:
            reports.lapsed_clients(-5, since=today)
        except ValidationError as exc:
            say(f"   ValidationError re-raised: {exc} (operation_rejected, no event)")

        say("3. failure in a write: inside a transaction, the row stays locked too long")
        with (
            events_shown_without_a_dsn(),
            db.connection() as other,  # another session holds the row ...
            other.transaction(),
        ):
            other.execute(
                "SELECT 1 FROM clients WHERE company_id = %s AND yclients_id = 1 FOR UPDATE",
                (COMPANY_ID,),
            )
            try:
                with db.transaction() as conn:  # ... and this one may wait 200 ms for it
                    conn.execute("SET LOCAL lock_timeout = '200ms'")
                    reports.import_client(
                        {"yclients_id": 1, "company_id": COMPANY_ID, "visit_count": 3}
                    )
            except QueryTimeoutError as exc:
                # import_client (the innermost boundary) reported it; the transaction,
                # a boundary too (component "database"), added nothing.
                say(f"   QueryTimeoutError re-raised (sqlstate {exc.sqlstate}), reported once")

        say("4. failure in a read: the Database is closed, the read reports and returns []")
        ClientsRepository(db).delete({"company_id": COMPANY_ID})
        db.close()
        with events_shown_without_a_dsn():
            after_close = reports.lapsed_clients(COMPANY_ID, since=today)
        say(f"   lapsed_clients returned {after_close!r}")

        say("5. the facade's own methods behave the same way")
        with Database.from_env() as again:
            facade = DataLayer(again)
            say(f"   get_company({COMPANY_ID}) -> {facade.get_company(COMPANY_ID)!r}")
    finally:
        db.close()
    errorkit.flush_suppressed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
