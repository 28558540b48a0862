"""Deleting expired WhatsApp keys in short batches, and recording each run.

The async cleanup is the one source: ``tools/async_to_sync.py`` generates the
sync one from it. What does no I/O lives in ``_cleanup_base.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from datalayer.errors import ValidationError
from datalayer.whatsapp._cleanup_base import (
    COUNT_EXPIRED_SQL,
    DELETE_BATCH_SQL,
    RECORD_RUN_SQL,
    CleanupResult,
    ProgressCallback,
    check_batch_size,
    elapsed_ms,
)
from errorkit import captured, get_logger

if TYPE_CHECKING:
    from datalayer._database_async import AsyncDatabase

__all__ = ["cleanup_expired_keys_async"]


_log = get_logger("datalayer.whatsapp")


# A batch job: only a run past a minute is worth an operation_slow line.
@captured("whatsapp", "cleanup_expired_keys", expected=(ValidationError,), slow_ms=60_000)
async def cleanup_expired_keys_async(
    db: AsyncDatabase,
    *,
    dry_run: bool = False,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
) -> CleanupResult:
    """Delete keys whose ``expires_at`` has passed, ``batch_size`` rows per transaction.

    Keys that expire while the run is going are left for the next run, so it
    always ends. A dry run deletes nothing and returns as ``deleted`` how many
    keys a real run would delete now. Each real run is recorded in
    ``whatsapp_cleanup_runs`` (``last_cleanup`` of the health check).
    """
    batch_size = check_batch_size(batch_size)
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    async with db.connection() as conn:
        row = await (await conn.execute(COUNT_EXPIRED_SQL)).fetchone()
    assert row is not None
    cutoff: datetime = row[0]
    total = int(row[1])
    if dry_run:
        result: CleanupResult = {
            "deleted": total,
            "duration_ms": elapsed_ms(started),
            "dry_run": True,
            "batches": 0,
        }
        _log.info("whatsapp_cleanup_dry_run", would_delete=total)
        return result

    deleted = 0
    batches = 0
    if progress is not None:
        progress(0, total)
    try:
        while True:
            async with db.connection() as conn:
                cursor = await conn.execute(
                    DELETE_BATCH_SQL, {"cutoff": cutoff, "limit": batch_size}
                )
                count = cursor.rowcount
            if count <= 0:
                break
            deleted += count
            batches += 1
            if progress is not None:
                progress(deleted, max(total, deleted))
            if count < batch_size:
                break
    except Exception as exc:
        await _record_run(db, started_at, cutoff, deleted, batches, batch_size, started, exc)
        raise
    duration_ms = await _record_run(
        db, started_at, cutoff, deleted, batches, batch_size, started, None
    )
    _log.info(
        "whatsapp_cleanup_completed",
        deleted=deleted,
        batches=batches,
        batch_size=batch_size,
        duration_ms=duration_ms,
    )
    return {"deleted": deleted, "duration_ms": duration_ms, "dry_run": False, "batches": batches}


async def _record_run(
    db: AsyncDatabase,
    started_at: datetime,
    cutoff: datetime,
    deleted: int,
    batches: int,
    batch_size: int,
    started: float,
    error: BaseException | None,
) -> float:
    duration_ms = elapsed_ms(started)
    try:
        async with db.connection() as conn:
            await conn.execute(
                RECORD_RUN_SQL,
                (
                    started_at,
                    cutoff,
                    deleted,
                    batches,
                    batch_size,
                    duration_ms,
                    None if error is None else type(error).__name__,
                ),
            )
    except Exception:
        if error is None:
            raise
        # The run already failed; its own error is what gets reported.
        _log.debug("whatsapp_cleanup_record_failed", exc_info=True)
    return duration_ms
