"""Prometheus metrics of the data layer (served with errorkit's at ``/metrics``).

- ``datalayer_operation_duration_seconds{operation, outcome}``: every facade
  call, ``outcome`` ``ok``, ``failed`` or ``rejected`` (recorded on its own);
- ``datalayer_pool_connections{state}`` (``idle``, ``in_use``),
  ``datalayer_pool_max_connections``, ``datalayer_pool_waiting``,
  ``datalayer_pool_timeouts_total``: read from the pools given to
  :func:`watch_pool` when Prometheus scrapes;
- ``datalayer_whatsapp_keys{state}`` (``total``, ``expired``): counted at
  scrape time at most once per 30 s, from the source given to
  :func:`watch_whatsapp_keys`.

``datalayer.api.create_app(db)`` watches ``db`` for both. A service exposing
metrics another way (its own ASGI app, a worker's port) calls them itself,
then serves ``errorkit.metrics.registry()``. See docs/operations.md.

.. versionadded:: 0.1.0
"""

from datalayer._metrics import watch_pool, watch_whatsapp_keys

__all__ = ["watch_pool", "watch_whatsapp_keys"]
