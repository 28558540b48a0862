"""Prometheus metrics of errorkit, and what to serve them with.

errorkit counts, in prometheus_client's default registry:

- ``errorkit_failures_total{component, operation, kind}``: every failure the
  innermost boundary reports, storm-held ones included;
- ``errorkit_rejections_total{component, operation}``: ``expected`` exceptions;
- ``errorkit_suppressed_total{component, operation, channel}``: reports held
  back by storm control (``channel`` ``event`` or ``log``).

Serve :func:`registry` (``prometheus_client.make_asgi_app(registry())``,
``start_http_server(port, registry=registry())``) or answer a scrape with
:func:`exposition`. ``ERRORKIT_METRICS=false`` (or ``setup(metrics=False)``)
stops the counting. See docs/operations.md.

.. versionadded:: 0.1.0
"""

from errorkit._metrics import enabled, exposition, register_collector, registry

__all__ = ["enabled", "exposition", "register_collector", "registry"]
