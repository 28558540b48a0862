"""Sentry initialised by the application itself, not by errorkit.setup().

The application calls ``sentry_sdk.init`` with the SDK's defaults (local
variables on, no value length limit, its own ``before_send``, the default and
auto-enabled integrations) and a transport of the test's that keeps every
envelope as the bytes that would go on the wire. What a boundary sends must
still be scrubbed and bounded; ``protect_sentry()`` extends that to the events
Sentry's own integrations send.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.scope import global_event_processors
from sentry_sdk.transport import Transport

import errorkit
from errorkit import captured

PHONE = "+7 968 648 44 88"
EMAIL = "anna.petrova@example.com"
PASSWORD = "Pw9s3cretZq"
DSN = f"postgresql://salon_rw:{PASSWORD}@db.internal:5432/salon"
TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
CARD = "4111 1111 1111 1111"
# Each must be absent from every byte sent (the phone's masked digits, the card's).
SECRETS = ("968 648", "9686484", EMAIL, "anna.petrova", PASSWORD, TOKEN[8:], "4111 1111 1111 1111")
TEN_MB = 10_000_000
ONE_MB = 1_000_000


class WireTransport(Transport):
    """Keeps each envelope as the serialised bytes Sentry would send."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize())

    def events(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.envelopes:
            for item in Envelope.deserialize(raw).items:
                event = item.get_event() if item.type == "event" else None
                if event is not None:
                    found.append(event)
        return found

    def wire(self) -> bytes:
        return b"".join(self.envelopes)


@contextmanager
def app_sentry(**options: Any) -> Iterator[WireTransport]:
    """``sentry_sdk.init`` as an application calls it; the previous client comes back after."""
    global_scope = sentry_sdk.get_global_scope()
    previous = global_scope.client
    transport = WireTransport()
    sentry_sdk.init(dsn="https://public@app.invalid/1", transport=transport, **options)
    try:
        # Breadcrumbs, tags and contexts of the test stay in the test.
        with sentry_sdk.isolation_scope():
            yield transport
    finally:
        sentry_sdk.get_client().close(timeout=0)
        global_scope.set_client(previous if previous.is_active() else None)


def assert_clean(wire: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in wire, f"{secret!r} was sent"


def test_app_defaults_are_what_this_module_tests() -> None:
    """The premise: SDK defaults send frame locals, with no length limit."""
    with app_sentry() as transport:
        options = sentry_sdk.get_client().options
        assert options["include_local_variables"] is True
        assert options["max_value_length"] is None
        assert options["before_send"] is None
    assert transport.envelopes == []


def test_a_boundary_event_is_scrubbed_and_bounded_whatever_the_app_initialised() -> None:
    seen: list[dict[str, Any]] = []

    def app_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return event

    huge = "x" * TEN_MB

    @captured("crm", "notify")
    def notify(phone: str, email: str, conninfo: str, token: str, card: str, payload: str) -> None:
        everything = f"{phone} {email} {conninfo} {token} {card}"  # a local holding it all
        raise ValueError(f"cannot notify {everything} {payload}")

    with app_sentry(before_send=app_before_send) as transport, pytest.raises(ValueError):
        notify(PHONE, EMAIL, DSN, TOKEN, CARD, huge)

    (event,) = transport.events()
    wire = transport.wire()
    assert_clean(wire)
    assert len(wire) < ONE_MB
    # the application's own before_send ran, and saw the protected event
    assert len(seen) == 1
    assert_clean(json.dumps(seen[0], default=str).encode())
    # what the boundary promises is still there
    assert event["tags"]["component"] == "crm" and event["tags"]["operation"] == "notify"
    arguments = event["contexts"]["errorkit"]["arguments"]
    assert arguments["phone"] == "'+* *** *** 44 88'"
    assert arguments["card"] == "'**** **** **** 1111'"
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames and all("vars" not in frame for frame in frames)
    assert "[email]" in event["exception"]["values"][-1]["value"]


def test_a_boundary_event_with_huge_values_everywhere_stays_under_one_megabyte() -> None:
    """Huge tags, contexts, extra, breadcrumbs and message: the event is cut, not dropped."""
    huge = "y" * TEN_MB

    @captured("crm", "bulk")
    def bulk(rows: list[str]) -> None:
        raise RuntimeError(huge)

    with app_sentry() as transport:
        for i in range(150):
            sentry_sdk.add_breadcrumb(message=huge[: 100_000 + i], data={"n": huge[:50_000]})
        with sentry_sdk.new_scope() as scope:
            scope.set_extra("blob", huge)
            scope.set_context("big", {str(i): huge[:200_000] for i in range(50)})
            scope.set_tag("t", huge[:1000])
            with pytest.raises(RuntimeError):
                bulk([huge] * 3)

    (event,) = transport.events()
    assert len(transport.wire()) < ONE_MB
    assert event["tags"]["operation"] == "bulk"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"


def test_protect_sentry_scrubs_integration_events_when_called_before_init() -> None:
    errorkit.protect_sentry()
    with app_sentry() as transport:
        logging.getLogger("app.sms").error(
            "sms to %s failed; write to %s via %s", PHONE, EMAIL, DSN
        )
    (event,) = transport.events()
    assert event["logger"] == "app.sms"
    assert_clean(transport.wire())


def test_protect_sentry_scrubs_integration_events_when_called_after_init() -> None:
    def leaky(phone: str, conninfo: str) -> None:
        card = CARD
        raise RuntimeError(f"no route for {phone} ({card})")

    with app_sentry() as transport:
        errorkit.protect_sentry()
        try:
            leaky(PHONE, DSN)
        except RuntimeError:
            sentry_sdk.capture_exception()  # outside any boundary
    (event,) = transport.events()
    assert_clean(transport.wire())
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["function"] for f in frames][-1] == "leaky"
    assert all("vars" not in frame for frame in frames)


def test_without_protect_sentry_integration_events_are_the_applications() -> None:
    """The control: nothing outside a boundary is touched unless protect_sentry() is called."""

    def leaky(phone: str) -> None:
        raise RuntimeError("no route")

    with app_sentry() as transport:
        try:
            leaky(PHONE)
        except RuntimeError:
            sentry_sdk.capture_exception()
    (event,) = transport.events()
    assert event["exception"]["values"][-1]["stacktrace"]["frames"][-1]["vars"]["phone"] == (
        f"'{PHONE}'"
    )


def test_protect_sentry_scrubs_a_thread_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", lambda args: None)

    def work(phone: str) -> None:
        raise RuntimeError(f"worker failed for {phone} / {EMAIL}")

    errorkit.protect_sentry()
    with app_sentry() as transport:
        worker = threading.Thread(target=work, args=(PHONE,))
        worker.start()
        worker.join()
    (event,) = transport.events()
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "threading"
    assert_clean(transport.wire())


def test_protect_sentry_bounds_integration_events() -> None:
    errorkit.protect_sentry()
    with app_sentry() as transport:
        logging.getLogger("app").error("payload: %s", "z" * TEN_MB)
    (event,) = transport.events()
    assert len(transport.wire()) < ONE_MB
    assert event["logger"] == "app"


def test_protect_sentry_also_covers_messages_with_an_attached_stack() -> None:
    errorkit.protect_sentry()

    def report(phone: str) -> None:
        sentry_sdk.capture_message("no route")  # the client attaches the stack, with locals

    with app_sentry(attach_stacktrace=True) as transport:
        report(PHONE)
    (event,) = transport.events()
    frames = event["threads"]["values"][0]["stacktrace"]["frames"]
    assert any(frame["function"] == "report" for frame in frames)
    assert all("vars" not in frame for frame in frames)
    assert_clean(transport.wire())


def test_protect_sentry_is_idempotent_and_keeps_the_apps_before_send() -> None:
    seen: list[dict[str, Any]] = []

    def app_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return event

    errorkit.protect_sentry()
    errorkit.protect_sentry()
    with app_sentry(before_send=app_before_send) as transport:
        errorkit.protect_sentry()
        sentry_sdk.capture_message(f"call {PHONE}")
    (event,) = transport.events()
    assert "44 88" in event["message"]
    assert_clean(transport.wire())
    assert len(seen) == 1
    processors = [p for p in global_event_processors if p.__module__ == "errorkit._sentry"]
    assert len(processors) == 1
