"""Versioned SQL migrations: every ``datalayer/migrations/*.sql``, in name order."""

from __future__ import annotations

import hashlib
from pathlib import Path

from psycopg import sql

from datalayer._database import Database
from errorkit import get_logger

__all__ = ["MIGRATIONS_DIR", "migrate", "pending_migrations"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# errorkit's loggers are lazy: they follow setup() and capture_logs() made later.
_log = get_logger("datalayer.migrate")


# One key for every process migrating this database (pg_advisory_xact_lock).
_LOCK_KEY = 0x64617461_6C617972 & 0x7FFF_FFFF_FFFF_FFFF

_CREATE_TABLE = sql.SQL(
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql"), key=lambda path: path.name)


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def migrate(db: Database, *, folder: Path | None = None) -> list[str]:
    """Apply the migrations not applied yet; return their versions (file stems).

    Each file runs in its own transaction under an advisory lock, so concurrent
    callers apply each file once, and a failing file leaves the earlier ones
    applied and itself not. A changed file that was already applied logs a warning.
    """
    applied_now: list[str] = []
    for path in _files(folder or MIGRATIONS_DIR):
        version = path.stem
        text = path.read_text(encoding="utf-8")
        checksum = _checksum(text)
        with db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_CREATE_TABLE)
            row = conn.execute(
                "SELECT checksum FROM schema_migrations WHERE version = %s", (version,)
            ).fetchone()
            if row is not None:
                if row[0] != checksum:
                    _log.warning("migration_changed_after_apply", version=version)
                continue
            conn.execute(text.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                (version, checksum),
            )
        _log.info("migration_applied", version=version)
        applied_now.append(version)
    return applied_now


def pending_migrations(db: Database, *, folder: Path | None = None) -> list[str]:
    """Versions on disk that the database has not recorded yet."""
    with db.connection() as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        done: set[str] = set()
        if exists and exists[0]:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    return [p.stem for p in _files(folder or MIGRATIONS_DIR) if p.stem not in done]
