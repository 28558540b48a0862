"""Personal data and secrets never leave the process unmasked."""

from __future__ import annotations

import json
from typing import Any

import pytest

import errorkit
from errorkit import captured, scrub

PHONE = "+7 968 648 44 88"
EMAIL = "anna.petrova@example.com"
DSN_PASSWORD = "s3cr3tPa55"
DSN = f"postgresql://app:{DSN_PASSWORD}@db.internal:5432/salon"
TOKEN = "tok_9f8e7d6c5b4a"
SECRETS = ("968 648", "9686484", EMAIL, "anna.petrova", DSN_PASSWORD, TOKEN)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("call +7 968 648 44 88 now", "call +* *** *** 44 88 now"),
        ("89686484488", "*******4488"),
        ("call 968.648.44.88", "call ***.***.44.88"),
        ("write to anna.petrova@example.com", "write to [email]"),
        (DSN, "postgresql://app:***@db.internal:5432/salon"),
        ("host=db password=hunter2 user=app", "host=db password=*** user=app"),
        ("{'token': 'abc'}", "{'token': '***'}"),
        ("Authorization: Bearer abc.def", "Authorization: ***"),
        (
            "HTTP Request: GET http://testserver/clients/79686484488?x=1 500",
            "HTTP Request: GET http://testserver/clients/*******4488?x=1 500",
        ),
        ('"GET /by-phone/79686484488 HTTP/1.1" 200', '"GET /by-phone/*******4488 HTTP/1.1" 200'),
    ],
)
def test_scrub_masks_text(raw: str, masked: str) -> None:
    assert scrub(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29 02:32:19",
        "duration 1234.5 ms",
        "order 123456",
        "/var/lib/app/12345678901/file",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "connect to 192.168.100.200 port 5432",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub(text) == text


def test_scrub_walks_structures_and_filters_secret_keys() -> None:
    value = {
        "password": "x",
        "api_key": "y",
        "Authorization": "Bearer z",
        "nested": [{"token": "t", "phone": PHONE}],
        "dsn": DSN,
        "empty_password": "",
        "tuple": (EMAIL,),
        "count": 3,
    }
    assert scrub(value) == {
        "password": "[Filtered]",
        "api_key": "[Filtered]",
        "Authorization": "[Filtered]",
        "nested": [{"token": "[Filtered]", "phone": "+* *** *** 44 88"}],
        "dsn": "[Filtered]",
        "empty_password": "",
        "tuple": ("[email]",),
        "count": 3,
    }


def test_personal_data_in_arguments_and_extra_is_masked_in_event_and_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from errorkit.testing import capture_events

    errorkit.setup(env_file=None, log_format="json")

    @captured("crm", "notify", reraise=False, extra={"dsn": DSN, "contact": EMAIL})
    def notify(phone: str, email: str, conninfo: str, token: str, payload: dict[str, str]) -> None:
        raise ValueError(f"cannot notify {phone} / {email} via {conninfo} with token={TOKEN}")

    capsys.readouterr()
    with capture_events() as events:
        notify(PHONE, EMAIL, DSN, TOKEN, {"password": DSN_PASSWORD, "to": PHONE})
    out = capsys.readouterr().out
    (event,) = events
    serialised = json.dumps(event)
    assert_clean(serialised)
    args = event["contexts"]["errorkit"]["arguments"]
    assert args["phone"] == "'+* *** *** 44 88'"
    assert args["token"] == "[Filtered]"
    assert args["dsn"] == "[Filtered]"
    assert "44 88" in args["payload"]
    assert "[email]" in event["exception"]["values"][0]["value"]

    lines = [json.loads(line) for line in out.splitlines()]
    (failed,) = [line for line in lines if line["event"] == "operation_failed"]
    assert_clean(out)
    assert "44 88" in failed["error_message"]


def test_tags_contexts_breadcrumbs_and_messages_are_scrubbed_by_before_send() -> None:
    import sentry_sdk

    from errorkit.testing import capture_events

    with capture_events() as events:
        sentry_sdk.add_breadcrumb(message=f"sms to {PHONE}", category="sms")
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("customer", EMAIL)
            scope.set_context("order", {"password": DSN_PASSWORD, "note": DSN})
            scope.set_extra("token", TOKEN)
            sentry_sdk.capture_message(f"user {EMAIL} called from {PHONE}")
    assert len(events) == 1
    assert_clean(json.dumps(events[0]))


def test_failing_scrubber_costs_a_fallback_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import errorkit._logging
    import errorkit._sentry
    from errorkit.testing import capture_events

    def broken(value: Any, **kwargs: Any) -> Any:
        raise RuntimeError("scrubber bug")

    errorkit.setup(env_file=None, log_format="json")
    monkeypatch.setattr(errorkit._sentry, "scrub_text", broken)
    monkeypatch.setattr(errorkit._logging, "scrub_for_log", broken)

    @captured("crm", "notify", reraise=False, default="fallback")
    def notify(phone: str) -> str:
        raise ValueError(f"cannot notify {phone}")

    capsys.readouterr()
    with capture_events() as events:
        assert notify(PHONE) == "fallback"
    (event,) = events
    assert_clean(json.dumps(event))
    assert event["tags"]["operation"] == "notify"
    assert "scrubbing failed" in event["message"]
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["event"] == "operation_failed"
    assert line["scrub_error"] == "RuntimeError"
    assert_clean(json.dumps(line))


def test_objects_logged_as_values_are_rendered_then_masked() -> None:
    from dataclasses import dataclass

    from errorkit.testing import capture_logs

    @dataclass
    class Client:
        name: str
        phone: str
        email: str

    class Opaque:
        def __repr__(self) -> str:
            return f"<Opaque {PHONE}>"

    with capture_logs() as lines:
        errorkit.get_logger().info(
            "client_synced", client=Client("Anna", PHONE, EMAIL), items=[Opaque()], count=2
        )
    (line,) = lines
    assert_clean(json.dumps(line))
    assert "44 88" in line["client"]
    assert line["items"][0] == "<Opaque +* *** *** 44 88>"
    assert line["count"] == 2


def test_chained_causes_keys_log_context_and_request_data_are_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sentry_sdk
    import structlog

    from errorkit.testing import capture_events

    errorkit.setup(env_file=None, log_format="json")

    class DomainError(Exception):
        pass

    @captured("crm", "sync", reraise=False, extra={"by_phone": {PHONE: "x"}})
    def sync(by_email: dict[str, int]) -> None:
        try:
            raise ValueError(f"connect {DSN} for {PHONE}")
        except ValueError as exc:
            raise DomainError(f"sync failed for {EMAIL}") from exc

    def add_request(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        # What a web framework integration attaches.
        event["request"] = {
            "url": f"https://salon.example/clients?email={EMAIL}",
            "query_string": f"phone={PHONE}&token={TOKEN}",
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Contact": EMAIL},
            "cookies": {"session": TOKEN},
            "data": {"phone": PHONE, EMAIL: "key"},
        }
        return event

    capsys.readouterr()
    with capture_events() as events, sentry_sdk.new_scope() as scope:
        scope.add_event_processor(add_request)
        structlog.contextvars.bind_contextvars(**{f"caller {PHONE}": EMAIL})
        try:
            sync({EMAIL: 1})
        finally:
            structlog.contextvars.clear_contextvars()
    (event,) = events
    assert_clean(json.dumps(event))
    assert len(event["exception"]["values"]) == 2  # the cause travelled, masked
    (failed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert_clean(json.dumps(failed))
    assert failed["event"] == "operation_failed"


@pytest.mark.parametrize(
    "text",
    [
        "79686484488:1@s.whatsapp.net",  # a WhatsApp id with a device suffix
        "key id 79686484488:12 refused",
        "205498712345678:3@lid",
    ],
)
def test_a_phone_followed_by_a_device_suffix_is_masked(text: str) -> None:
    digits = "".join(ch for ch in text.split(":")[0] if ch.isdigit())
    masked = scrub(text)
    assert digits not in masked
    assert digits[-4:] in masked  # the last four digits are kept, as for any phone
