"""What the statement timeout on single statements costs in PgBouncer mode, per call.

Run: ``python benchmarks/pgbouncer_timeout.py`` (needs the ``pgbouncer`` binary; uses
TEST_DATABASE_URL, DATABASE_URL or the server on 127.0.0.1:5432; creates and drops its
own database and starts its own PgBouncer in transaction mode on a free port).

In PgBouncer mode each ``db.connection()`` lease runs ``BEGIN; SET LOCAL
statement_timeout = ...`` (one round trip) and ``COMMIT`` around its statements.
The baseline is the same Database with that wrap switched off (what PgBouncer mode
did before: no timeout at all on single statements). Both sides run the same
repository calls in short alternating batches; the ratio is the median of the
per-batch ratios.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from _common import scratch_database, server_url
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from datalayer import Database, Settings, migrate
from datalayer.repositories import ClientsRepository

BATCHES = 40
CALLS = 200


class NoSingleStatementTimeout(Database):
    """The baseline: PgBouncer mode without the per-lease transaction and timeout."""

    def _begin_with_timeout(self, conn: Any) -> None:
        pass

    def _end_lease(self, conn: Any, failure: BaseException | None) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(target: str) -> Iterator[str]:
    """A PgBouncer (transaction pooling) in front of ``target``; yields its conninfo."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    server = conninfo_to_dict(target)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-"))
    port = _free_port()
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    lines = [
        "[databases]",
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {workdir / 'userlist.txt'}",
        "pool_mode = transaction",
        "default_pool_size = 4",
        "ignore_startup_parameters = extra_float_digits",
        "server_reset_query =",
    ]
    if os.geteuid() == 0:
        lines.append("user = postgres")
        entry = pwd.getpwnam("postgres")
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    ini = workdir / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    for path in workdir.iterdir():
        path.chmod(0o644)
    process = subprocess.Popen(
        [binary, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    conninfo = make_conninfo(target, host="127.0.0.1", port=str(port))
    try:
        for _ in range(100):
            try:
                with psycopg.connect(conninfo, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.Error:
                time.sleep(0.1)
        yield conninfo
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def per_call_us(fn: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(CALLS):
        fn(i)
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    with scratch_database("bench_pgb_timeout", server_url()) as url:
        with Database(url) as direct:
            migrate(direct)
        with pgbouncer(url) as through:
            settings = Settings(pgbouncer=True, max_connections=1, service_name="bench-pgb")
            with (
                Database(through, settings) as timed,
                NoSingleStatementTimeout(through, settings) as bare,
            ):
                repos = {"timeout": ClientsRepository(timed), "bare": ClientsRepository(bare)}
                repos["bare"].upsert({"yclients_id": 1, "company_id": 1, "name": "Anna"})
                calls: dict[str, Callable[[ClientsRepository], Callable[[int], object]]] = {
                    "find_one": lambda r: lambda i: r.find_one({"yclients_id": 1}),
                    "upsert": lambda r: (
                        lambda i: r.upsert(
                            {"yclients_id": 1 + i % 50, "company_id": 1, "name": f"c{i}"}
                        )
                    ),
                }
                for name, make in calls.items():
                    timings: dict[str, list[float]] = {"timeout": [], "bare": []}
                    for repo in repos.values():
                        per_call_us(make(repo))  # warm up
                    for _ in range(BATCHES):
                        for side, repo in repos.items():
                            timings[side].append(per_call_us(make(repo)))
                    timed_us = statistics.median(timings["timeout"])
                    bare_us = statistics.median(timings["bare"])
                    ratios = [
                        t / b for t, b in zip(timings["timeout"], timings["bare"], strict=True)
                    ]
                    print(
                        f"{name:9s} PgBouncer mode, with the timeout {timed_us:7.1f} us/call, "
                        f"without {bare_us:7.1f} us/call: ratio {statistics.median(ratios):.2f}x "
                        f"(+{timed_us - bare_us:.0f} us)"
                    )


if __name__ == "__main__":
    main()
