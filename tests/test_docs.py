"""The guides keep up with the code: every environment variable read is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

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
