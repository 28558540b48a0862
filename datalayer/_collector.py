"""Python's cyclic garbage collector held off while a bulk batch is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; the previous state comes back after.

    Building a batch of 100k rows allocates 100k+ containers (a dict or a tuple
    each) that all live until the batch is written. On the way, every allocation
    threshold starts a collection that walks them, and now and then a full one
    that walks every live container of the process, to free nothing: the rows
    hold no cycles. Measured (``benchmarks/facade_bulk.py``), that was a third of
    ``validate_payloads``' time and most of ``bulk_rows``'. The pause is
    process-wide, so it wraps only short CPU-bound code (no I/O, no await);
    a collector the application switched off stays off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
