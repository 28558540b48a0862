"""The guides keep up with the code: every environment variable read is documented,
with the default the code really uses."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_VARIABLE = re.compile(r"\b(?:ERRORKIT|SENTRY)_[A-Z_]+\b")


def _documented(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def errorkit_variables() -> list[str]:
    found: set[str] = set()
    for path in (ROOT / "errorkit").rglob("*.py"):
        found.update(_VARIABLE.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def datalayer_variables() -> list[str]:
    from datalayer import Settings

    names = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    return sorted(names | {"DATABASE_URL", "DATALAYER_DATA_DIR"})


def test_the_lists_are_found() -> None:
    assert "SENTRY_DSN" in errorkit_variables()
    assert "POSTGRES_PGBOUNCER" in datalayer_variables()


@pytest.mark.parametrize("variable", errorkit_variables())
def test_errorkit_variable_is_in_the_error_handling_guide(variable: str) -> None:
    assert f"`{variable}`" in _documented("docs/error-handling.md")


@pytest.mark.parametrize("variable", datalayer_variables())
def test_database_setting_is_in_the_datalayer_guide(variable: str) -> None:
    assert f"`{variable}`" in _documented("docs/datalayer.md")


def _table_defaults(doc: str) -> dict[str, str]:
    """``variable -> default`` from the guide's ``| `VAR` | default | meaning |`` rows."""
    row = re.compile(r"^\| `([A-Z_]+)` \| ([^|]+?) \|", re.MULTILINE)
    return {name: default for name, default in row.findall(_documented(doc))}


def _as_documented(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_database_defaults_in_the_datalayer_guide_are_the_code_s() -> None:
    from datalayer import Settings

    documented = _table_defaults("docs/datalayer.md")
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        variable = f.metadata["env"]
        expected = _as_documented(getattr(defaults, f.name))
        assert documented.get(variable) == expected, f"{variable}: the code's default is {expected}"


def test_errorkit_defaults_in_the_error_handling_guide_are_the_code_s() -> None:
    from errorkit._config import Settings

    documented = _table_defaults("docs/error-handling.md")
    defaults = Settings.from_env({})
    assert {
        name: documented.get(name)
        for name in (
            "ERRORKIT_SLOW_MS",
            "ERRORKIT_EVENTS_PER_MINUTE",
            "ERRORKIT_LOG_LINES_PER_MINUTE",
            "ERRORKIT_REPR_LIMIT",
        )
    } == {
        "ERRORKIT_SLOW_MS": _as_documented(defaults.slow_ms),
        "ERRORKIT_EVENTS_PER_MINUTE": _as_documented(defaults.events_per_minute),
        "ERRORKIT_LOG_LINES_PER_MINUTE": _as_documented(defaults.log_lines_per_minute),
        "ERRORKIT_REPR_LIMIT": _as_documented(defaults.repr_limit),
    }
    assert logging.getLevelName(defaults.log_level).lower() == documented["ERRORKIT_LOG_LEVEL"]


_COMMAND = re.compile(r"`datalayer ([^`]*)`")
_WORDS = re.compile(r"\s*((?:[a-z]+ ?)+)(.*)")


def _documented_commands() -> list[Any]:
    """``(command words, flags)`` of every `datalayer ...` in README.md and docs/
    (`datalayer a | b [--x]` lists commands a and b)."""
    found: dict[tuple[str, ...], set[str]] = {}
    for doc in ("README.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))):
        for text in _COMMAND.findall(_documented(doc)):
            for alternative in text.split("|"):
                match = _WORDS.match(alternative)
                assert match, f"{doc}: `datalayer {text}`"
                flags = found.setdefault(tuple(match.group(1).split()), set())
                flags.update(re.findall(r"--[a-z][a-z-]*", match.group(2)))
    return [pytest.param(path, sorted(flags), id=" ".join(path)) for path, flags in found.items()]


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            chosen: argparse.ArgumentParser = action.choices[word]
            return chosen
    raise AssertionError(f"no command {word!r}")


@pytest.mark.parametrize(("path", "flags"), _documented_commands())
def test_documented_cli_commands_and_flags_exist(path: tuple[str, ...], flags: list[str]) -> None:
    from datalayer.cli import build_parser

    parser = build_parser()
    for word in path:
        parser = _subparser(parser, word)
    known = {option for action in parser._actions for option in action.option_strings}
    assert set(flags) <= known, f"datalayer {' '.join(path)}: {sorted(set(flags) - known)}"


def test_documented_commands_are_found() -> None:
    assert ("pool", "budget") in {p.values[0] for p in _documented_commands()}
