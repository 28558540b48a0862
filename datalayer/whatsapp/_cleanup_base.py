"""What the expired-key cleanup does without I/O: its result, SQL and argument checks.

Shared by ``cleanup_expired_keys_async`` and the generated ``cleanup_expired_keys``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict

from datalayer.errors import ValidationError

__all__ = ["CleanupResult", "ProgressCallback"]

#: ``progress(done, total)``, called once before the first batch and after each.
ProgressCallback = Callable[[int, int], None]


class CleanupResult(TypedDict):
    deleted: int
    duration_ms: float
    dry_run: bool
    batches: int


COUNT_EXPIRED_SQL = "SELECT now(), count(*) FROM whatsapp_keys WHERE expires_at <= now()"

# One statement per batch: on an autocommit connection it is its own short
# transaction, so no lock is held across batches. Oldest first, through the
# expires_at index: a batch never rescans the rows (dead until vacuum) that
# earlier batches deleted, as a plain LIMIT would.
DELETE_BATCH_SQL = """
    DELETE FROM whatsapp_keys
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM whatsapp_keys
        WHERE expires_at <= %(cutoff)s
        ORDER BY expires_at LIMIT %(limit)s
    ))
    AND expires_at <= %(cutoff)s
"""

RECORD_RUN_SQL = """
    INSERT INTO whatsapp_cleanup_runs
        (started_at, finished_at, cutoff, deleted, batches, batch_size,
         duration_ms, error)
    VALUES (%s, now(), %s, %s, %s, %s, %s, %s)
"""


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size must be a positive integer")
    return batch_size


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
