"""Faults: a restarted server, killed connections, a full pool, timeouts, a crash mid-bulk.

Every test runs against the suite's own throwaway cluster (see conftest.py),
with a small pool (3) and a short pool timeout (1 s), bounded call counts and
threads that stop by themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from datalayer import Database, DataLayer, Settings
from datalayer.errors import QueryTimeoutError, TransientError
from datalayer.repositories import ClientsRepository
from datalayer.whatsapp import AuthStateStore
from errorkit import flush_suppressed
from errorkit.testing import capture_events

from . import _events
from ._pgcluster import ThrowawayServer
from .conftest import admin_connect, record_figure

COMPANY = 7001
POOL_TIMEOUT = 1.0


def settings(name: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "max_connections": 3,
        "pool_timeout": POOL_TIMEOUT,
        "connect_timeout": 2.0,
        "statement_timeout": 30.0,
        "expected_services": 1,
        "service_name": name,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_db(clean_cluster_url: str) -> Iterator[Any]:
    opened: list[Database] = []

    def make(name: str, **overrides: Any) -> Database:
        db = Database(clean_cluster_url, settings(name, **overrides))
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()


def client_row(client_id: int, company: int = COMPANY) -> dict[str, Any]:
    return {
        "yclients_id": client_id,
        "company_id": company,
        "name": f"Client {client_id}",
        "phone": f"7968{client_id:07d}",
    }


def seed_company(layer: DataLayer, company: int = COMPANY) -> None:
    layer.upsert_company({"company_id": company, "title": f"Salon {company}"})


def backends(url: str, application_name: str) -> list[tuple[int, str]]:
    with admin_connect(url) as conn:
        return [
            (int(pid), str(state))
            for pid, state in conn.execute(
                "SELECT pid, coalesce(state, '') FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (application_name,),
            )
        ]


def terminate(url: str, pids: list[int]) -> None:
    with admin_connect(url) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def wait_gone(url: str, pids: list[int], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        alive = {pid for pid, _ in backends_all(url)}
        if not alive & set(pids):
            return
        time.sleep(0.02)
    raise AssertionError(f"backends {pids} still alive after {limit}s")


def backends_all(url: str) -> list[tuple[int, str]]:
    with admin_connect(url) as conn:
        return [
            (int(pid), str(s or ""))
            for pid, s in conn.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
        ]


def client_ids(url: str, company: int = COMPANY) -> set[int]:
    with admin_connect(url) as conn:
        return {
            int(row[0])
            for row in conn.execute(
                "SELECT yclients_id FROM clients WHERE company_id = %s", (company,)
            )
        }


def table_fingerprint(url: str) -> tuple[int, str]:
    with admin_connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(md5(string_agg(c::text, '|' ORDER BY c.yclients_id,"
            " c.company_id)), '') FROM clients c"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


# --- server restart under load -------------------------------------------------


@dataclass
class Outcome:
    thread: int
    kind: str  # "write" | "read"
    started: float
    ended: float
    ok: bool
    error: str | None = None


@dataclass
class LoadState:
    outage_start: float = float("inf")
    outage_end: float = float("inf")
    restarted: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def successes(self) -> int:
        with self.lock:
            return sum(o.ok for o in self.outcomes)


SEEDED_READS = 20
# Calls fail fast during the outage (the breaker), so a thread makes many in it.
MAX_CALLS_PER_THREAD = 5000
SUCCESSES_AFTER_RESTART = 25


def _load_thread(layer: DataLayer, state: LoadState, index: int) -> None:
    after_restart_ok = 0
    for call in range(MAX_CALLS_PER_THREAD):
        write = call % 2 == 0
        started = time.monotonic()
        error: str | None = None
        client_id = 100_000 * (index + 1) + call
        try:
            if write:
                layer.upsert_client(client_row(client_id))
                ok = True
            else:
                ok = layer.get_client_by_id(call % SEEDED_READS + 1, COMPANY) is not None
                if not ok:
                    error = "degraded"
        except Exception as exc:
            ok, error = False, type(exc).__name__
        ended = time.monotonic()
        with state.lock:
            state.outcomes.append(
                Outcome(index, "write" if write else "read", started, ended, ok, error)
            )
            if write and ok:
                state.acknowledged.add(client_id)
        if state.restarted.is_set() and started > state.outage_end:
            after_restart_ok = after_restart_ok + 1 if ok else 0
            if after_restart_ok >= SUCCESSES_AFTER_RESTART:
                return
        time.sleep(0.002)


@pytest.mark.slow
def test_server_restart_during_facade_load(cluster: ThrowawayServer, make_db: Any) -> None:
    db = make_db("rel-restart")
    layer = DataLayer(db)
    seed_company(layer)
    layer.upsert_clients([client_row(i) for i in range(1, SEEDED_READS + 1)])
    state = LoadState()
    threads = [
        threading.Thread(target=_load_thread, args=(layer, state, i), daemon=True) for i in range(4)
    ]
    with capture_events() as events:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while state.successes() < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        state.outage_start = time.monotonic()
        cluster.stop()
        time.sleep(1.0)  # the outage: long enough for calls to hit it
        cluster.start()
        state.outage_end = time.monotonic()
        state.restarted.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a load thread hung"
        flush_suppressed()
        captured_events = list(events)

    outcomes = state.outcomes
    failed = [o for o in outcomes if not o.ok]
    before = [o for o in outcomes if o.ended < state.outage_start]
    during = [
        o for o in outcomes if o.started <= state.outage_end and o.ended >= state.outage_start
    ]
    after = [o for o in outcomes if o.started > state.outage_end]
    first_ok_after = min((o.ended for o in after if o.ok), default=float("inf"))
    late = sum(1 for o in failed if o.started > first_ok_after)
    record_figure(
        "restart under load",
        f"{len(outcomes)} calls ({len(before)} before, {len(during)} overlapping the outage, "
        f"{len(after)} after), {len(failed)} failed; first success "
        f"{(first_ok_after - state.outage_end) * 1000:.0f} ms after the server was back; "
        f"{late} failed after that first success; {len(captured_events)} events sent",
    )
    # Before the outage everything worked.
    assert before and all(o.ok for o in before)
    # The outage was hit, and failed calls are the kind the policy promises:
    # writes raise TransientError, reads degrade to None (never raise).
    assert failed, "no call met the outage"
    assert {o.error for o in failed if o.kind == "write"} <= {"TransientError"}
    assert {o.error for o in failed if o.kind == "read"} <= {"degraded"}
    # No call failed before the outage began.
    assert all(o.ended >= state.outage_start for o in failed)
    # Calls after the restart succeed in the same process: every thread ended on a run
    # of successes.
    for index in range(4):
        mine = [o for o in outcomes if o.thread == index]
        assert all(o.ok for o in mine[-SUCCESSES_AFTER_RESTART:]), f"thread {index} never recovered"
    # Every acknowledged write is in the table.
    assert state.acknowledged <= client_ids(db_url(db))
    # One event per failed call: storm control sends a few and counts the rest, so the
    # events plus the counts they carry add up to the failures.
    facade = _events.of(captured_events, "data-layer")
    assert _events.accounted(facade) == len(failed)
    assert all(_events.tags(e).get("error.kind") == "transient" for e in facade)
    # Each is a failure of the outage (a TransientError, at level warning: the
    # environment, not a bug) or a storm-control summary carrying a count.
    assert any(_events.is_failure(e) for e in facade)
    for event in facade:
        assert event.get("level") == "warning", event.get("level")
        if _events.is_failure(event):
            assert _events.exception_type(event) == "TransientError"
        else:
            assert _events.errorkit_context(event)["suppressed"] > 0


def db_url(db: Database) -> str:
    return str(db.pool.conninfo)


# --- killed connections ----------------------------------------------------------


def test_idle_connections_killed_are_invisible(cluster: ThrowawayServer, make_db: Any) -> None:
    db = make_db("rel-idle-kill")
    layer = DataLayer(db, strict=True)
    seed_company(layer)
    layer.upsert_clients([client_row(i) for i in range(1, 4)])
    # Open all three pool connections, then leave them idle.
    barrier = threading.Barrier(3)

    def hold() -> None:
        with db.connection() as conn:
            barrier.wait(timeout=10)
            conn.execute("SELECT 1")

    holders = [threading.Thread(target=hold) for _ in range(3)]
    for t in holders:
        t.start()
    for t in holders:
        t.join(timeout=15)
    idle = [pid for pid, state in backends(db_url(db), "rel-idle-kill") if state == "idle"]
    assert len(idle) == 3
    terminate(db_url(db), idle)
    wait_gone(db_url(db), idle)
    with capture_events() as events:
        for i in range(1, 13):
            assert layer.get_client_by_id(i % 3 + 1, COMPANY) is not None
            layer.upsert_client(client_row(i % 3 + 1))
    assert list(events) == []
    assert not set(idle) & {pid for pid, _ in backends(db_url(db), "rel-idle-kill")}


def test_connection_killed_inside_transaction_rolls_back(
    cluster: ThrowawayServer, make_db: Any
) -> None:
    db = make_db("rel-tx-kill")
    layer = DataLayer(db)
    seed_company(layer)
    clients = ClientsRepository(db)
    before = table_fingerprint(db_url(db))
    with capture_events() as events:
        with pytest.raises(TransientError), db.transaction() as conn:
            clients.upsert(client_row(1))
            layer.upsert_client(client_row(2))
            terminate(db_url(db), [conn.info.backend_pid])
            wait_gone(db_url(db), [conn.info.backend_pid])
            layer.upsert_client(client_row(3))
        failures = list(events)
    # Failed once: one event, from the innermost boundary that saw it (the facade's).
    assert len(failures) == 1
    assert _events.tags(failures[0])["error.kind"] == "transient"
    # Rolled back: nothing of the transaction is in the table.
    assert table_fingerprint(db_url(db)) == before
    # And the next transaction works on a fresh connection.
    with capture_events() as events, db.transaction():
        clients.upsert(client_row(4))
        layer.upsert_client(client_row(5))
    assert list(events) == []
    assert client_ids(db_url(db)) == {4, 5}


# --- pool exhaustion -------------------------------------------------------------


@pytest.mark.slow
def test_pool_exhaustion_fails_fast_and_recovers(cluster: ThrowawayServer, make_db: Any) -> None:
    db = make_db("rel-pool-full")
    layer = DataLayer(db, strict=True)
    seed_company(layer)
    layer.upsert_client(client_row(1))
    hold_seconds = POOL_TIMEOUT * 4
    holding = threading.Barrier(4)
    released = threading.Event()  # a slow statement has given its connection back

    def hold() -> None:
        with db.connection() as conn:
            holding.wait(timeout=10)
            conn.execute("SELECT pg_sleep(%s)", (hold_seconds,))
        released.set()

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(3)]
    for t in holders:
        t.start()
    holding.wait(timeout=10)
    time.sleep(0.1)  # the three statements are running
    results: list[tuple[str, float, bool]] = []
    lock = threading.Lock()

    def caller() -> None:
        started = time.monotonic()
        try:
            layer.get_client_by_id(1, COMPANY)
            outcome = "ok"
        except Exception as exc:
            outcome = type(exc).__name__
        with lock:
            results.append((outcome, time.monotonic() - started, released.is_set()))

    with capture_events() as events:
        callers = [threading.Thread(target=caller, daemon=True) for _ in range(20)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(timeout=hold_seconds + 10)
        assert not any(t.is_alive() for t in callers), "a caller hung on the full pool"
        flush_suppressed()
        reported = list(events)
    waits = sorted(w for _, w, _ in results)
    record_figure(
        "pool exhaustion (3 held, 20 callers, pool timeout 1 s)",
        f"callers failed after {waits[0] * 1000:.0f}..{waits[-1] * 1000:.0f} ms",
    )
    assert [o for o, _, _ in results] == ["TransientError"] * 20
    # They waited for the pool timeout (not failing at once), and gave up while the
    # slow statements still held every connection (not waiting for them).
    assert all(w >= POOL_TIMEOUT * 0.9 for w in waits)
    assert not any(after_release for _, _, after_release in results)
    assert _events.accounted(_events.of(reported, "data-layer", "get_client_by_id")) == 20
    assert {_events.tags(e).get("error.kind") for e in reported} == {"transient"}
    for t in holders:
        t.join(timeout=hold_seconds + 10)
    # Recovered: the pool serves again.
    assert layer.get_client_by_id(1, COMPANY) is not None
    assert db.stats()["in_use"] == 0


# --- timeouts --------------------------------------------------------------------


def test_statement_timeout_is_a_query_timeout(cluster: ThrowawayServer, make_db: Any) -> None:
    db = make_db("rel-stmt-timeout", statement_timeout=0.5)
    layer = DataLayer(db)
    seed_company(layer)
    layer.upsert_client(client_row(1))
    with admin_connect(db_url(db)) as blocker:
        # Another session holds the row: the facade's upsert waits, then the server
        # cancels it at the statement timeout.
        blocker.execute("BEGIN")
        blocker.execute(
            "SELECT 1 FROM clients WHERE yclients_id = 1 AND company_id = %s FOR UPDATE",
            (COMPANY,),
        )
        with capture_events() as events, pytest.raises(QueryTimeoutError) as info:
            layer.upsert_client(client_row(1) | {"name": "Changed"})
        blocker.execute("ROLLBACK")
    assert info.value.sqlstate == "57014"
    (event,) = events
    expected_tags = {
        "component": "data-layer",
        "operation": "upsert_client",
        "error.kind": "timeout",
    }
    assert expected_tags.items() <= _events.tags(event).items()
    assert event.get("level") == "warning"
    # A plain slow statement too, through a transaction boundary.
    with capture_events() as events, pytest.raises(QueryTimeoutError), db.transaction() as conn:
        conn.execute("SELECT pg_sleep(5)")
    (event,) = events
    assert _events.tags(event)["error.kind"] == "timeout"
    assert _events.tags(event)["component"] == "database"


def test_lock_timeout_is_a_query_timeout(cluster: ThrowawayServer, make_db: Any) -> None:
    db = make_db("rel-lock-timeout")
    layer = DataLayer(db)
    seed_company(layer)
    layer.upsert_client(client_row(1))
    clients = ClientsRepository(db)
    with admin_connect(db_url(db)) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        with (
            capture_events() as events,
            pytest.raises(QueryTimeoutError) as info,
            db.transaction() as conn,
        ):
            conn.execute("SET LOCAL lock_timeout = '200ms'")
            clients.upsert(client_row(1) | {"name": "Changed"})
        blocker.execute("ROLLBACK")
    assert info.value.sqlstate == "55P03"
    (event,) = events
    assert _events.tags(event)["error.kind"] == "timeout"
    assert event.get("level") == "warning"
    assert clients.find_one({"yclients_id": 1, "company_id": COMPANY}) is not None


# --- crash mid-bulk --------------------------------------------------------------

BULK_ROWS = 50_000


@pytest.mark.slow
def test_connection_killed_mid_bulk_leaves_table_as_it_was(
    cluster: ThrowawayServer, make_db: Any
) -> None:
    db = make_db("rel-bulk-kill", statement_timeout=60.0)
    layer = DataLayer(db)
    seed_company(layer)
    clients = ClientsRepository(db)
    # Some rows the bulk would update, so "as it was" covers updates, not only inserts.
    clients.bulk_upsert([client_row(i) for i in range(1, 1001)])
    before = table_fingerprint(db_url(db))
    rows = [client_row(i) | {"name": f"Bulk {i}"} for i in range(1, BULK_ROWS + 1)]
    killed: list[float] = []
    stop = threading.Event()

    def killer() -> None:
        # Wait until the bulk is merging its rows into the table (COPY done, the
        # INSERT ... SELECT ... ON CONFLICT running), let it write a little, kill it.
        with admin_connect(db_url(db)) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT pid, now() - xact_start FROM pg_stat_activity "
                    "WHERE application_name = 'rel-bulk-kill' AND state = 'active' "
                    "AND query LIKE 'INSERT INTO%'"
                ).fetchone()
                if row is not None:
                    time.sleep(0.01)
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    killed.append(row[1].total_seconds())
                    return
                time.sleep(0.002)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        with pytest.raises(TransientError):
            clients.bulk_upsert(rows)
    finally:
        stop.set()
        watcher.join(timeout=10)
    record_figure(
        "crash mid-bulk",
        f"{BULK_ROWS} rows, killed while merging, {killed[0] * 1000:.0f} ms into its transaction; "
        f"bulk failed after {(time.monotonic() - started) * 1000:.0f} ms"
        if killed
        else "kill missed",
    )
    assert killed, "the bulk finished before it could be killed"
    assert table_fingerprint(db_url(db)) == before
    # The data layer still works, and the same bulk succeeds on a retry.
    started = time.monotonic()
    assert clients.bulk_upsert(rows) == BULK_ROWS
    record_figure(
        "bulk_upsert of 50 000 rows (uninterrupted retry), ms",
        f"{(time.monotonic() - started) * 1000:.0f}",
    )
    assert table_fingerprint(db_url(db))[0] == BULK_ROWS


# --- restart while idle -------------------------------------------------------


def test_restart_while_idle_is_invisible(cluster: ThrowawayServer, make_db: Any) -> None:
    """A restart while the pool is idle: the dead connections are replaced at checkout."""
    db = make_db("rel-idle-restart")
    layer = DataLayer(db, strict=True)
    seed_company(layer)
    layer.upsert_client(client_row(1))
    cluster.restart()
    with capture_events() as events:
        for _ in range(5):
            assert layer.get_client_by_id(1, COMPANY) is not None
    assert list(events) == []


# --- the WhatsApp auth state during an outage ----------------------------------


def test_auth_state_reads_fail_loudly_during_an_outage(
    cluster: ThrowawayServer, make_db: Any
) -> None:
    """A failed read must never look like "no creds" / "no keys": a client would re-pair
    (lose the session) on an empty answer. During an outage reads raise, then recover."""
    db = make_db("rel-wa-outage")
    store = AuthStateStore(db, "rel-outage")
    store.save_creds({"me": {"id": "1"}, "noiseKey": {"private": b"\x00\x01"}})
    store.set_keys({"pre-key": {"1": {"k": b"\xff"}}})
    cluster.stop()
    try:
        with capture_events() as events:
            with pytest.raises(TransientError):
                store.load_creds()
            with pytest.raises(TransientError):
                store.get_keys("pre-key", ["1"])
            with pytest.raises(TransientError):
                store.set_keys({"pre-key": {"2": {"k": b"\x01"}}})
    finally:
        cluster.start()
    # One event per failed call, from the innermost boundary (set_keys' transaction
    # reports as component "database", inside whatsapp.set_keys).
    assert len(events) == 3
    chains = [_events.errorkit_context(e)["boundaries"] for e in events]
    assert [chain[0] for chain in chains] == [
        "whatsapp.load_creds",
        "whatsapp.get_keys",
        "whatsapp.set_keys",
    ]
    assert {_events.tags(e)["error.kind"] for e in events} == {"transient"}
    # Back: the same store object answers, nothing was lost or half-written.
    deadline = time.monotonic() + 30
    while True:
        try:
            creds = store.load_creds()
            break
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert creds == {"me": {"id": "1"}, "noiseKey": {"private": b"\x00\x01"}}
    assert store.get_keys("pre-key", ["1", "2"]) == {"1": {"k": b"\xff"}}
