"""Personal data and secrets never leave the process unmasked."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import errorkit
import errorkit._scrub
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
    import errorkit._event
    import errorkit._logging
    from errorkit.testing import capture_events

    def broken(value: Any, **kwargs: Any) -> Any:
        raise RuntimeError("scrubber bug")

    errorkit.setup(env_file=None, log_format="json")
    monkeypatch.setattr(errorkit._event, "scrub_text", broken)
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


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("write to анна.петрова@почта.рф", "write to [email]"),
        ("email=anna@example.com&x=1", "email=[email]&x=1"),
        ("{'email': 'anna@example.com'}", "{'email': '[email]'}"),
        ("o'brien+tag@mail.example.co.uk!", "[email]!"),
        ("=@example.com", "[email]"),
        ("dsn https://public@o1.ingest.sentry.io/1", "dsn https://[email]/1"),
        ("card 4111 1111 1111 1111 exp 12/27", "card **** **** **** 1111 exp 12/27"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("paid 4111111111111111.", "paid ************1111."),
        ("amex 3782 822463 10005", "amex **** ****** *0005"),
        ("order 12 4111 1111 1111 1111", "order 12 **** **** **** 1111"),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "key sk_live_*** ok"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "xoxb-***"),
        ("token: ghp_0123456789abcdefghijABCDEFGHIJ012345", "token: ***"),  # key: value first
        ("with ghp_0123456789abcdefghijABCDEFGHIJ012345", "with ghp_***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_***"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws AKIA***"),
        ("glpat-0123456789abcdefghij", "glpat-***"),
        (
            "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/***",
        ),
        (
            "POST https://discord.com/api/webhooks/1234567890/abcDEF-ghi_jk ok",
            "POST https://discord.com/api/webhooks/*** ok",
        ),
        (
            "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
            "https://api.telegram.org/bot123456789:***/getMe",
        ),
        ("bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "bot123456789:***"),
        (
            "https://crm.example/webhooks/s3cr3t-path?event=x",
            "https://crm.example/webhooks/***?event=x",
        ),
        ("access_token=abc123&x=1", "access_token=***&x=1"),
    ],
)
def test_scrub_masks_cards_tokens_webhooks_and_international_addresses(
    raw: str, masked: str
) -> None:
    assert scrub(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails Luhn: not a card (a phone-length part still masks)
        "build task-abcdefghijklmnopqrstuvwxyz done",  # "sk-" inside a word
        "    @functools.lru_cache(maxsize=4096)",  # a decorator, not an address
        "user@localhost",
        "see /srv/app/hooks/pre-commit",  # a file path, not a URL
    ],
)
def test_scrub_leaves_near_misses_alone(text: str) -> None:
    masked = scrub(text)
    if text.startswith("4111"):
        assert masked.endswith("1111 1112")  # not masked as a card (all but the last 4)
    else:
        assert masked == text


def test_a_secret_at_the_end_of_a_ten_megabyte_string_is_masked() -> None:
    filler = "x" * 10_000_000
    masked = scrub(f"{filler} call +7 968 648 44 88, key sk_live_4eC39HqLyjWDarjtT1zdp7dc")
    assert masked.endswith("call +* *** *** 44 88, key sk_live_***")
    assert len(masked) == len(filler) + len(" call +* *** *** 44 88, key sk_live_***")


def _unbounded_repeats_nested(tree: Any, inside: bool = False) -> list[str]:
    """Unbounded backtracking repeats nested in another one (the catastrophic shape)."""
    from re import _constants as c  # type: ignore[attr-defined]

    found: list[str] = []
    for op, av in tree:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            _, high, body = av
            unbounded = high == c.MAXREPEAT
            if unbounded and inside:
                found.append(str(body))
            found += _unbounded_repeats_nested(body, inside or unbounded)
        elif op is c.POSSESSIVE_REPEAT:
            found += _unbounded_repeats_nested(av[2], False)  # never gives anything back
        elif op is c.ATOMIC_GROUP:
            found += _unbounded_repeats_nested(av, False)
        elif op is c.SUBPATTERN:
            found += _unbounded_repeats_nested(av[3], inside)
        elif op is c.BRANCH:
            for branch in av[1]:
                found += _unbounded_repeats_nested(branch, inside)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            found += _unbounded_repeats_nested(av[1], inside)
    return found


@pytest.mark.parametrize("pattern", errorkit._scrub.PATTERNS, ids=lambda p: p.pattern[:24])
def test_every_scrub_pattern_is_linear_by_construction(pattern: re.Pattern[str]) -> None:
    """What keeps a 10 MB string from taking minutes (benchmarks/scrub_throughput.py times it).

    1. The pattern starts with a literal or one character class, so the engine skips
       to candidate positions in C (a leading lookbehind would hide that from it).
    2. No unbounded repeat that can give characters back sits inside another one.
    """
    from re import _compiler, _parser  # type: ignore[attr-defined]

    tree = _parser.parse(pattern.pattern, pattern.flags)
    literal_prefix = _compiler._get_literal_prefix(tree, pattern.flags)[0]
    charset_prefix = _compiler._get_charset_prefix(tree, pattern.flags)
    assert literal_prefix or charset_prefix, "no prefix the engine can skip ahead to"
    assert _unbounded_repeats_nested(tree) == []
