"""Hypothesis strategies for hostile input.

Filter dicts, column names, operators and order keys for the repositories;
hostile values (unicode, quotes, semicolons, ``--``, NUL bytes, very long
strings); phone numbers in many formats; e-mail addresses; DSNs with
passwords; nested containers; objects whose ``repr`` raises.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


def property_settings(max_examples: int = 100) -> settings:
    """Moderate example counts, no deadline (a shared 2-core machine), no explain phase.

    The explain phase re-runs a failing example hundreds of times to annotate it;
    shrinking alone gives a readable counterexample at a fraction of the cost.
    """
    return settings(
        max_examples=max_examples,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "like", "ilike")

# Fragments an attacker (or an unlucky caller) puts where a name or value goes.
NASTY_FRAGMENTS = (
    "'",
    "''",
    '"',
    "\\",
    ";",
    "--",
    "/*",
    "*/",
    "%",
    "_",
    "$1",
    "%s",
    "%(x)s",
    "{}",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    "1; DROP TABLE clients; --",
    "' OR '1'='1",
    '" OR "1"="1',
    "x') OR 1=1 --",
    "$$ OR 1=1 $$",
    "E'\\x27'",
    "\u02bc",  # modifier letter apostrophe
    "\uff07",  # fullwidth apostrophe
    "\u202e",  # right-to-left override
    "\ufeff",
    "😀",
    "Ω≈ç√",
    "日本語",
)

NASTY_IDENTIFIERS = (
    "",
    " ",
    "*",
    "1",
    "name;",
    "name --",
    "name; DROP TABLE clients",
    '"name"',
    "Name",
    "NAME",
    "name ",
    " name",
    "name\x00",
    "clients.name",
    "public.clients",
    "name)",
    "(select 1)",
    "pg_sleep(1)",
    "staff_id",  # the old bug: staff_id for yclients_staff_id
    "companyId",
    "yclientsId",
    "ctid",
    "oid",
    "xmin",
    "tableoid",
)

NASTY_OPERATORS = (
    "",
    "=",
    "==",
    "<>",
    "!=",
    "EQ",
    "Eq",
    "eq ",
    "between",
    "is",
    "is_null",
    "regex",
    "~",
    "similar",
    "; --",
    "in; DROP TABLE clients",
    "$gte",
    "__eq__",
)


def hostile_text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Strings built to break naive SQL and logging: quotes, NUL, unicode, huge."""
    fragments = st.sampled_from(NASTY_FRAGMENTS)
    mixed = st.lists(st.one_of(fragments, st.text(max_size=8)), min_size=1, max_size=6).map("".join)
    very_long = st.builds(
        lambda piece, times: piece * times,
        st.sampled_from(("a", "'", "é", "😀", "; --", "x\x00")),
        st.integers(min_value=1_000, max_value=20_000),
    )
    return st.one_of(
        st.text(max_size=max_size),
        fragments,
        mixed,
        very_long,
    )


def hostile_identifier(known: Sequence[str]) -> st.SearchStrategy[str]:
    """Column-name-like strings that are not in ``known`` (possibly close to one)."""
    near = st.sampled_from(list(known)).flatmap(
        lambda name: st.sampled_from(
            [name.upper(), name + " ", " " + name, f'"{name}"', name + ";", name + "--", name[:-1]]
        )
    )
    return st.one_of(st.sampled_from(NASTY_IDENTIFIERS), near, st.text(max_size=20)).filter(
        lambda name: name not in known
    )


def any_scalar() -> st.SearchStrategy[Any]:
    """Any value a caller might pass as a filter value."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(),
        st.binary(max_size=16),
        st.dates(),
        st.datetimes(),
        st.builds(object),
    )


@dataclass(frozen=True)
class ColumnSpec:
    """A column and a strategy of values that fit its type."""

    name: str
    values: st.SearchStrategy[Any]


def column_values(python_type: Any) -> st.SearchStrategy[Any]:
    """Type-fitting values for a model field type (ints in range, text, dates...)."""
    text_ = str(python_type)
    if "int" in text_ and "list" not in text_:
        return st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if "bool" in text_:
        return st.booleans()
    if "datetime" in text_:
        return st.datetimes(
            min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)
        ).map(lambda value: value.replace(tzinfo=dt.UTC))
    if "date" in text_:
        return st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1))
    if "str" in text_:
        return hostile_text()
    return any_scalar()


def filter_value(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A filter value: plain, None (IS NULL), or an operator mapping."""
    scalar_ops = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])
    like_ops = st.sampled_from(["like", "ilike"])
    list_ops = st.sampled_from(["in", "not_in"])
    return st.one_of(
        values,
        st.none(),
        st.builds(lambda op, value: {op: value}, scalar_ops, values),
        st.builds(lambda op, value: {op: value}, like_ops, hostile_text()),
        st.builds(lambda op, value: {op: value}, list_ops, st.lists(values, max_size=5)),
        st.dictionaries(scalar_ops, values, min_size=1, max_size=3),
    )


def filters(columns: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed filter dicts over the given columns (name -> model type)."""
    return st.lists(st.sampled_from(sorted(columns)), unique=True, max_size=3).flatmap(
        lambda names: st.fixed_dictionaries(
            {name: filter_value(column_values(columns[name])) for name in names}
        )
    )


def hostile_filters(columns: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Filter arguments that should be refused: unknown names/operators, odd shapes."""
    known = sorted(columns)
    bad_name = st.builds(lambda name, value: {name: value}, hostile_identifier(known), any_scalar())
    bad_operator = st.builds(
        lambda name, op, value: {name: {op: value}},
        st.sampled_from(known),
        st.one_of(st.sampled_from(NASTY_OPERATORS), st.text(max_size=10)).filter(
            lambda op: op not in OPERATORS
        ),
        any_scalar(),
    )
    empty_operator: st.SearchStrategy[dict[str, Any]] = st.builds(
        lambda name: {name: {}}, st.sampled_from(known)
    )
    odd_keys = st.dictionaries(
        st.one_of(st.integers(), st.none(), st.tuples(st.text(max_size=3))),
        any_scalar(),
        min_size=1,
        max_size=2,
    )
    return st.one_of(bad_name, bad_operator, empty_operator, odd_keys)


def order_keys(known: Sequence[str]) -> st.SearchStrategy[Any]:
    """Order keys: valid names, hostile names, and odd types."""
    return st.one_of(
        st.sampled_from(list(known)),
        hostile_identifier(known),
        st.lists(st.sampled_from(list(known)), min_size=1, max_size=3),
        st.integers(),
    )


# --- secrets for the scrubber -------------------------------------------------


@dataclass(frozen=True)
class Phone:
    """A generated phone number: how it was written, and its digits."""

    text: str
    digits: str


def _format_ru(national: str, style: int) -> str:
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:10]
    return [
        f"+7 {a} {b} {c} {d}",
        f"8 ({a}) {b}-{c}-{d}",
        f"8{national}",
        f"7{national}",
        f"+7{national}",
        f"+7({a}){b}-{c}-{d}",
        f"+7-{a}-{b}-{c}-{d}",
        f"8.{a}.{b}.{c}.{d}",
        f"+7 ({a}) {b}{c}{d}",
        f"tel:+7{national}",
    ][style]


@st.composite
def phones(draw: st.DrawFn) -> Phone:
    """Phone numbers in many national and international formats."""
    kind = draw(st.integers(min_value=0, max_value=2))
    if kind == 0:
        national = "9" + draw(st.text(alphabet=string.digits, min_size=9, max_size=9))
        text = _format_ru(national, draw(st.integers(min_value=0, max_value=9)))
    elif kind == 1:
        area = draw(st.integers(min_value=201, max_value=989))
        exchange = draw(st.integers(min_value=200, max_value=999))
        line = draw(st.integers(min_value=0, max_value=9999))
        text = draw(
            st.sampled_from(
                [
                    f"+1 ({area}) {exchange}-{line:04d}",
                    f"+1-{area}-{exchange}-{line:04d}",
                    f"+1{area}{exchange}{line:04d}",
                    f"1 {area} {exchange} {line:04d}",
                ]
            )
        )
    else:
        country = draw(st.sampled_from(["44", "49", "33", "380", "375", "998", "971"]))
        rest = draw(st.text(alphabet=string.digits, min_size=8, max_size=10))
        rest = "1" + rest[1:] if rest.startswith("0") else rest
        text = draw(
            st.sampled_from(
                [
                    f"+{country}{rest}",
                    f"+{country} {rest[:3]} {rest[3:6]} {rest[6:]}",
                    f"00{country}{rest}",
                ]
            )
        )
    return Phone(text=text, digits="".join(ch for ch in text if ch.isdigit()))


_LOCAL_CHARS = string.ascii_letters + string.digits + "._%+-"
_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"


@st.composite
def _ordinary_emails(draw: st.DrawFn) -> str:
    local = draw(st.text(alphabet=_LOCAL_CHARS, min_size=3, max_size=20)).strip(".") or "abc"
    local = local.replace("..", ".")
    domain = draw(st.text(alphabet=string.ascii_lowercase + string.digits, min_size=2, max_size=12))
    tld = draw(st.sampled_from(["com", "ru", "org", "io", "co.uk", "travel"]))
    return f"{local}@{domain}.{tld}"


@st.composite
def international_emails(draw: st.DrawFn) -> str:
    """Addresses with a Cyrillic local part, a Cyrillic domain, or both (анна@почта.рф)."""
    local = draw(st.text(alphabet=_CYRILLIC + string.digits + "._-", min_size=2, max_size=16))
    local = local.strip(".").replace("..", ".") or "анна"
    domain = draw(st.text(alphabet=_CYRILLIC + string.digits + "-", min_size=2, max_size=12))
    domain = domain.strip("-") or "почта"
    tld = draw(st.sampled_from(["рф", "ru", "com", "xn--p1ai", "москва"]))
    return f"{local}@{domain}.{tld}"


def emails() -> st.SearchStrategy[str]:
    """E-mail addresses: ordinary shapes, hypothesis' RFC 5322 ones, internationalised ones."""
    return st.one_of(_ordinary_emails(), st.emails(), international_emails())


@dataclass(frozen=True)
class Card:
    """A payment card number as written, and its digits (the last four may stay)."""

    text: str
    digits: str


def _luhn_digit(body: str) -> str:
    total = 0
    for position, ch in enumerate(reversed(body)):
        value = int(ch)
        if position % 2 == 0:  # doubled: the check digit will stand to its right
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


@st.composite
def cards(draw: st.DrawFn) -> Card:
    """Luhn-valid card numbers, 13 to 19 digits, plain or grouped by spaces or dashes."""
    length = draw(st.sampled_from([13, 15, 16, 16, 16, 19]))
    first = draw(st.sampled_from(["4", "51", "37", "6011", "35", "22"]))
    body = first + draw(
        st.text(
            alphabet=string.digits,
            min_size=length - 1 - len(first),
            max_size=length - 1 - len(first),
        )
    )
    digits = body + _luhn_digit(body)
    separator = draw(st.sampled_from(["", " ", "-"]))
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    if length == 15 and separator:
        groups = [digits[:4], digits[4:10], digits[10:]]  # American Express: 4-6-5
    return Card(text=separator.join(groups), digits=digits)


@dataclass(frozen=True)
class Token:
    """A secret as written (a token, a webhook URL) and the part of it that must not survive."""

    text: str
    secret: str


_TOKEN_BODY = string.ascii_letters + string.digits


@st.composite
def tokens(draw: st.DrawFn) -> Token:
    """Tokens with well-known secret prefixes (Stripe, Slack, GitHub, AWS, GitLab, ...)."""
    prefix = draw(
        st.sampled_from(
            [
                "sk_live_",
                "sk_test_",
                "rk_live_",
                "whsec_",
                "xoxb-",
                "xoxp-",
                "xapp-",
                "ghp_",
                "gho_",
                "ghs_",
                "github_pat_",
                "AKIA",
                "glpat-",
                "AIza",
                "sk-proj-",
                "npm_",
                "hf_",
            ]
        )
    )
    alphabet = string.ascii_uppercase + string.digits if prefix == "AKIA" else _TOKEN_BODY
    size = 16 if prefix == "AKIA" else draw(st.integers(min_value=20, max_value=48))
    secret = draw(st.text(alphabet=alphabet, min_size=size, max_size=size))
    return Token(text=prefix + secret, secret=secret)


@st.composite
def webhooks(draw: st.DrawFn) -> Token:
    """Webhook URLs whose path is the secret, and Telegram bot tokens."""
    kind = draw(st.integers(min_value=0, max_value=4))
    word = st.text(alphabet=_TOKEN_BODY, min_size=24, max_size=32)
    secret = draw(word)
    if kind == 0:
        team = draw(
            st.text(alphabet=string.ascii_uppercase + string.digits, min_size=9, max_size=11)
        )
        text = f"https://hooks.slack.com/services/T{team}/B{team}/{secret}"
    elif kind == 1:
        hook_id = draw(st.integers(min_value=10**17, max_value=10**19 - 1))
        text = f"https://discord.com/api/webhooks/{hook_id}/{secret}"
    elif kind == 2:
        bot = draw(st.integers(min_value=10**8, max_value=10**10 - 1))
        secret = "AA" + draw(st.text(alphabet=_TOKEN_BODY + "_-", min_size=33, max_size=33))
        text = f"https://api.telegram.org/bot{bot}:{secret}/sendMessage?chat_id=1"
    elif kind == 3:
        bot = draw(st.integers(min_value=10**8, max_value=10**10 - 1))
        secret = "AA" + draw(st.text(alphabet=_TOKEN_BODY + "_-", min_size=33, max_size=33))
        text = f"bot{bot}:{secret}"
    else:
        host = draw(
            st.sampled_from(["example.com", "hooks.zapier.com/hooks/catch", "crm.internal"])
        )
        text = f"https://{host}/webhooks/{secret}?source=salon"
    return Token(text=text, secret=secret)


# No "&": in free text it ends a URL query value, and the scrubber stops there.
_PASSWORD_CHARS = string.ascii_letters + string.digits + "!$()*+,;=-._~^"


@dataclass(frozen=True)
class Dsn:
    """A connection string and the password inside it."""

    text: str
    password: str


@st.composite
def dsns(draw: st.DrawFn) -> Dsn:
    """Connection strings with passwords: URLs and libpq key=value forms."""
    password = draw(st.text(alphabet=_PASSWORD_CHARS, min_size=10, max_size=24))
    # Make every password unmistakable (not a substring of ordinary words).
    password = "Pw" + password + "Zq"
    user = draw(st.sampled_from(["postgres", "app", "salon_rw", "u"]))
    host = draw(st.sampled_from(["db.internal", "127.0.0.1", "pg-1.example.com"]))
    form = draw(st.integers(min_value=0, max_value=5))
    text = [
        f"postgresql://{user}:{password}@{host}:5432/salon",
        f"postgres://{user}:{password}@{host}/salon?sslmode=require",
        f"host={host} port=5432 user={user} password={password} dbname=salon",
        f"redis://:{password}@{host}:6379/0",
        f"amqp://{user}:{password}@{host}:5672/vhost",
        f"https://{user}:{password}@{host}/sentry/1",
    ][form]
    return Dsn(text=text, password=password)


SECRET_KEYS = ("password", "secret", "token", "api_key", "authorization", "cookie", "dsn")


class ReprRaises:
    """An object whose ``repr`` and ``str`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nested dicts and lists (and tuples) holding ``leaves`` at any depth."""
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(
                st.one_of(st.sampled_from(("data", "note", "items", "x")), st.text(max_size=6)),
                children,
                max_size=4,
            ),
        ),
        max_leaves=10,
    )


# --- JSON-able values for the auth-state store --------------------------------


def json_values(*, with_bytes: bool = True) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-able values, optionally with ``bytes`` leaves (Buffers)."""
    leaves: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ]
    if with_bytes:
        leaves.append(st.binary(max_size=64))
    return st.recursive(
        st.one_of(*leaves),
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.text(max_size=10), children, max_size=5),
        ),
        max_leaves=20,
    )
