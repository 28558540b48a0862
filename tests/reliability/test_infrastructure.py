"""The fault-injection tools themselves work: a server that really stops, a
Sentry endpoint that really never answers, a port that really refuses."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest

from ._pgcluster import ThrowawayServer
from ._sentry import BlackHole, closed_port
from .conftest import admin_connect, record_figure


def test_cluster_is_private(cluster: ThrowawayServer) -> None:
    assert cluster.port != 5432
    with admin_connect(cluster.url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        assert str(cluster.datadir) in str(row[0])


def test_stop_really_stops_and_start_keeps_data(cluster: ThrowawayServer) -> None:
    with admin_connect(cluster.url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS infra_probe (x int)")
        conn.execute("TRUNCATE infra_probe")
        conn.execute("INSERT INTO infra_probe VALUES (42)")
    held = admin_connect(cluster.url)
    cluster.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.url, connect_timeout=2).close()
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    finally:
        held.close()
        started = time.perf_counter()
        cluster.start()
        record_figure("server start -w alone, ms", f"{(time.perf_counter() - started) * 1000:.0f}")
    with admin_connect(cluster.url) as conn:
        assert conn.execute("SELECT x FROM infra_probe").fetchall() == [(42,)]
        conn.execute("DROP TABLE infra_probe")


def test_restart_is_measured(cluster: ThrowawayServer) -> None:
    held = admin_connect(cluster.url)
    seconds = cluster.restart()
    try:
        # A real restart: the session opened before it is gone.
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    finally:
        held.close()
    assert seconds > 0
    assert cluster.is_running()


def test_black_hole_accepts_and_never_answers() -> None:
    with BlackHole(lifetime=10) as hole:
        with socket.create_connection(("127.0.0.1", hole.port), timeout=2) as sock:
            sock.sendall(b"POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        assert hole.accepted >= 1


def test_black_hole_lifetime_is_bounded() -> None:
    hole = BlackHole(lifetime=0.3)
    time.sleep(0.6)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hole.port), timeout=1).close()
    hole.close()


def test_closed_port_refuses() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=1).close()
