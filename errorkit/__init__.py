"""errorkit: one error boundary for Python services.

``@captured(component, operation)`` gives any function, sync or async, the same
behaviour on failure: one structured log line, exactly one scrubbed Sentry
event, and a declared policy (re-raise, or return a default).
"""

from errorkit._boundary import Block, Boundary, captured, propagate
from errorkit._classify import classify, register_classifier
from errorkit._logging import get_logger
from errorkit._report import Failure, flush_suppressed
from errorkit._scrub import scrub
from errorkit._sentry import protect_sentry
from errorkit._setup import setup

__all__ = [
    "Block",
    "Boundary",
    "Failure",
    "captured",
    "classify",
    "flush_suppressed",
    "get_logger",
    "propagate",
    "protect_sentry",
    "register_classifier",
    "scrub",
    "setup",
]
