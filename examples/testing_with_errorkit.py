"""Your own tests, asserting on what your code reports, with errorkit's pytest fixtures.

Run it:

    python -m pytest examples/testing_with_errorkit.py

Installing errorkit registers two fixtures (no conftest needed):

- ``errorkit_events``: the Sentry events sent during the test, as dicts,
  after the same scrubbing production uses, through an in-memory transport
  (no network, no DSN needed);
- ``errorkit_logs``: the log lines written during the test, as dicts, after
  the production processors, debug level and up.

Both start with fresh storm-control budgets, so tests do not depend on each
other. Copy this file next to your code and replace ``fetch_invoice`` with
your own function.
"""

from __future__ import annotations

from typing import Any

import pytest

from errorkit import captured


class InvoiceNotFound(LookupError):
    """A normal outcome: the caller asked for an invoice that does not exist."""


class GatewayDown(ConnectionError):
    """The payment gateway did not answer."""


@captured("billing", expected=(InvoiceNotFound,), reraise=False, default=None)
def fetch_invoice(invoice_id: int, customer_phone: str, *, gateway: str = "up") -> dict[str, Any]:
    """The code under test: a read that returns None after reporting a failure."""
    if invoice_id <= 0:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    if gateway == "down":
        raise GatewayDown(f"gateway refused the call for {customer_phone}")
    return {"invoice_id": invoice_id, "total": 1500}


@captured("billing")
def monthly_report(customer_phone: str) -> list[dict[str, Any]]:
    """An outer boundary around the read: a failure inside is still reported once."""
    invoice = fetch_invoice(7, customer_phone, gateway="down")
    if invoice is None:
        raise RuntimeError("report incomplete") from None
    return [invoice]


def failures(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "operation_failed"]


def test_success_sends_nothing(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    assert fetch_invoice(1, "+7 968 648 44 88") == {"invoice_id": 1, "total": 1500}
    assert errorkit_events == []
    # At debug level every call leaves one operation_completed line with its duration.
    (line,) = errorkit_logs
    assert line["event"] == "operation_completed"
    assert line["operation"] == "fetch_invoice"
    assert line["duration_ms"] >= 0


def test_failure_is_one_event_one_line_and_the_default(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    assert fetch_invoice(7, "+7 968 648 44 88", gateway="down") is None

    (event,) = errorkit_events
    assert event["tags"] == {
        "component": "billing",
        "operation": "fetch_invoice",
        "error.kind": "transient",  # a ConnectionError
    }
    assert event["level"] == "warning"  # transient and timeout go out as warnings
    assert event["fingerprint"] == ["billing", "fetch_invoice", f"{__name__}.GatewayDown"]

    (line,) = failures(errorkit_logs)
    assert line["level"] == "error"
    assert line["error_kind"] == "transient"
    assert line["sentry_event_id"] == event["event_id"]


def test_personal_data_is_scrubbed_everywhere(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    fetch_invoice(7, "+7 968 648 44 88", gateway="down")

    (event,) = errorkit_events
    arguments = event["contexts"]["errorkit"]["arguments"]
    assert arguments["invoice_id"] == "7"
    assert "968 648" not in arguments["customer_phone"]  # masked ...
    assert "44 88" in arguments["customer_phone"]  # ... but the last 4 digits stay
    assert "968 648" not in event["exception"]["values"][0]["value"]
    assert "968 648" not in failures(errorkit_logs)[0]["error_message"]


def test_expected_exception_is_a_warning_and_is_reraised(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    # expected= wins over reraise=False: the caller handles normal outcomes.
    with pytest.raises(InvoiceNotFound):
        fetch_invoice(0, "+7 968 648 44 88")

    assert errorkit_events == []
    (line,) = [line for line in errorkit_logs if line["level"] == "warning"]
    assert line["event"] == "operation_rejected"
    assert line["error_type"] == f"{__name__}.InvoiceNotFound"


def test_nested_boundaries_report_once(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    # fetch_invoice reports GatewayDown and returns None; monthly_report then raises
    # its own RuntimeError, a different failure: two events, one per failure.
    with pytest.raises(RuntimeError):
        monthly_report("+7 968 648 44 88")
    assert [e["tags"]["operation"] for e in errorkit_events] == ["fetch_invoice", "monthly_report"]

    # The same exception passing through both boundaries is reported by the inner one only.
    errorkit_events.clear()
    with pytest.raises(GatewayDown), captured("billing", "outer"), captured("billing", "inner"):
        raise GatewayDown("down")
    (event,) = errorkit_events
    assert event["tags"]["operation"] == "inner"
    assert event["contexts"]["errorkit"]["boundaries"] == ["billing.outer", "billing.inner"]


def test_context_manager_boundary_exposes_the_error(
    errorkit_events: list[dict[str, Any]],
) -> None:
    with captured("billing", "nightly_sync", reraise=False) as boundary:
        raise GatewayDown("down")
    assert isinstance(boundary.error, GatewayDown)
    assert boundary.event_id == errorkit_events[0]["event_id"]
