"""Transactions: shared connection, savepoints, rollback levels, retries, one report."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from datalayer import ConflictError, Database, TransientError, ValidationError
from datalayer.models import Client, Company
from datalayer.repositories import ClientsRepository, CompaniesRepository
from errorkit import captured
from errorkit.testing import capture_events, capture_logs


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (e["tags"]["component"], e["tags"]["operation"], e["tags"]["error.kind"]) for e in events
    ]


def test_repository_calls_inside_share_the_transaction_connection(clean_db: Database) -> None:
    companies = CompaniesRepository(clean_db)
    assert not clean_db.in_transaction()
    with clean_db.transaction() as conn:
        assert clean_db.in_transaction()
        with clean_db.connection() as inner:
            assert inner is conn
        companies.upsert(Company(company_id=1, title="uncommitted"))
        seen_elsewhere: list[int] = []
        # Another thread has its own context: a pooled connection, outside the transaction.
        worker = threading.Thread(target=lambda: seen_elsewhere.append(companies.count()))
        worker.start()
        worker.join()
        assert seen_elsewhere == [0]
        assert companies.count() == 1
    assert not clean_db.in_transaction()
    assert companies.count() == 1


def test_failure_in_the_second_table_leaves_neither_row_and_reports_once(
    unique_client_email: Database,
) -> None:
    clean_db = unique_client_email
    companies, clients = CompaniesRepository(clean_db), ClientsRepository(clean_db)
    clients.upsert(Client(yclients_id=1, company_id=1, email="anna@example.org"))
    with capture_events() as events, pytest.raises(ConflictError), clean_db.transaction():
        companies.upsert(Company(company_id=1, title="Salon"))
        clients.upsert(Client(yclients_id=2, company_id=1, email="anna@example.org"))
    assert companies.count() == 0
    assert clients.count() == 1
    assert kinds(events) == [("database", "transaction", "conflict")]


def test_nested_savepoint_rollback_keeps_the_outer_work(clean_db: Database) -> None:
    companies, clients = CompaniesRepository(clean_db), ClientsRepository(clean_db)
    with clean_db.transaction():
        companies.upsert(Company(company_id=1, title="kept"))
        with pytest.raises(RuntimeError), clean_db.transaction():
            clients.upsert(Client(yclients_id=1, company_id=1, name="dropped"))
            raise RuntimeError("inner failure")
        # A failed statement in a savepoint does not doom the outer transaction either.
        with pytest.raises(ValidationError), clean_db.transaction():
            clients.upsert(Client(yclients_id=2, company_id=1, visit_count=-1))
        clients.upsert(Client(yclients_id=3, company_id=1, name="after"))
    assert [c.company_id for c in companies.find_many()] == [1]
    assert [c.yclients_id for c in clients.find_many()] == [3]


def test_an_error_reported_inside_is_not_reported_again_outside(clean_db: Database) -> None:
    companies = CompaniesRepository(clean_db)

    @captured("data-layer", "upsert_company")
    def facade_like() -> None:
        with clean_db.transaction(), clean_db.transaction():
            companies.upsert(Company(company_id=1, title="x"))
            raise KeyError("boom")

    with capture_events() as events, pytest.raises(KeyError):
        facade_like()
    assert kinds(events) == [("database", "savepoint", "internal")]
    assert companies.count() == 0


def test_validation_errors_are_rejections_not_events(clean_db: Database) -> None:
    with (
        capture_events() as events,
        capture_logs() as logs,
        pytest.raises(ValidationError),
        clean_db.transaction(),
    ):
        ClientsRepository(clean_db).find_many({"no_such_column": 1})
    assert events == []
    assert [line["event"] for line in logs if line.get("component") == "database"] == [
        "operation_rejected"
    ]


def test_run_in_transaction_returns_and_commits(clean_db: Database) -> None:
    companies = CompaniesRepository(clean_db)
    stored = clean_db.run_in_transaction(lambda: companies.upsert(Company(company_id=5, title="t")))
    assert stored.company_id == 5
    assert companies.count() == 1


@pytest.mark.sync_only
def test_serialization_failure_between_two_transactions_is_retried(clean_db: Database) -> None:
    """Write skew under SERIALIZABLE: each reads the count, then inserts; one must retry."""
    clients = ClientsRepository(clean_db)
    barrier = threading.Barrier(2, timeout=10)
    attempts: list[int] = []
    errors: list[BaseException] = []

    def book(client_id: int) -> None:
        tries = 0

        def work() -> None:
            nonlocal tries
            tries += 1
            attempts.append(client_id)
            with clean_db.connection() as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                conn.execute("SELECT count(*) FROM clients WHERE company_id = 1").fetchone()
            if tries == 1:
                barrier.wait()  # both have read before either writes
            clients.upsert(Client(yclients_id=client_id, company_id=1))

        try:
            clean_db.run_in_transaction(work, retries=3)
        except BaseException as exc:
            errors.append(exc)

    with capture_events() as events, capture_logs() as logs:
        threads = [threading.Thread(target=book, args=(i,)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert clients.count() == 2
    assert len(attempts) == 3  # one of the two ran twice
    retries = [line for line in logs if line["event"] == "transaction_retry"]
    assert [r["sqlstate"] for r in retries] == ["40001"]
    assert events == []  # a retry that succeeds is not a failure


def test_run_in_transaction_does_not_retry_other_errors(clean_db: Database) -> None:
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise ConflictError("taken", sqlstate="23505")

    with capture_events() as events, pytest.raises(ConflictError):
        clean_db.run_in_transaction(fail, retries=3)
    assert calls == [1]
    assert kinds(events) == [("database", "run_in_transaction", "conflict")]


def test_run_in_transaction_gives_up_after_its_retries(clean_db: Database) -> None:
    calls: list[int] = []

    def always_conflicting() -> None:
        calls.append(1)
        raise TransientError("could not serialize access", sqlstate="40001")

    with capture_events() as events, pytest.raises(TransientError):
        clean_db.run_in_transaction(always_conflicting, retries=2)
    assert len(calls) == 3
    assert kinds(events) == [("database", "run_in_transaction", "transient")]
    with pytest.raises(ValidationError):
        clean_db.run_in_transaction(always_conflicting, retries=-1)


def test_run_in_transaction_nested_is_a_savepoint(clean_db: Database) -> None:
    """The inner work is undone, the outer work before and after it is kept."""
    companies = CompaniesRepository(clean_db)

    def inner() -> None:
        companies.upsert(Company(company_id=2, title="inner, rolled back"))
        raise KeyError("inner")

    with clean_db.transaction():
        companies.upsert(Company(company_id=1, title="outer, before"))
        with pytest.raises(KeyError):
            clean_db.run_in_transaction(inner)
        # Still usable: a failure without a savepoint would have aborted the transaction.
        companies.upsert(Company(company_id=3, title="outer, after"))
    stored = companies.find_many({}, order_by="company_id")
    assert [company.company_id for company in stored] == [1, 3]


def test_duration_is_logged(clean_db: Database) -> None:
    with capture_logs() as logs, clean_db.transaction():
        CompaniesRepository(clean_db).count()
    done = [line for line in logs if line.get("component") == "database"]
    assert done and done[-1]["event"] == "operation_completed"
    assert done[-1]["operation"] == "transaction"
    assert done[-1]["duration_ms"] >= 0
