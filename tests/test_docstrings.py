"""Every public name has a docstring of its own, and ``pydoc errorkit.captured`` reads well.

Public means: the names in ``__all__`` of the packages and of the modules a
user imports by name (``errorkit.testing``, ``errorkit.asgi``), and the
public methods and properties of the classes among them.
"""

from __future__ import annotations

import importlib
import inspect
import pydoc
from collections.abc import Iterator
from typing import Any

import pytest

PUBLIC_MODULES = (
    "errorkit",
    "errorkit.testing",
    "errorkit.asgi",
    "errorkit.metrics",
    "datalayer",
    "datalayer.metrics",
)


def _own_doc(obj: Any) -> str | None:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):
        return None  # the signature a dataclass writes when it has no docstring
    return doc


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties defined on ``cls`` itself."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            yield name, value.__func__
        elif isinstance(value, property):
            yield name, value.fget
        elif callable(value) and not inspect.isclass(value):
            yield name, value  # functions, and functions wearing a boundary


def public_names() -> list[Any]:
    params = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        params.append(pytest.param(module, id=module_name))
        for name in module.__all__:
            obj = getattr(module, name)
            params.append(pytest.param(obj, id=f"{module_name}.{name}"))
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    params.append(pytest.param(value, id=f"{module_name}.{name}.{member}"))
    return params


@pytest.mark.parametrize("obj", public_names())
def test_public_name_has_a_docstring(obj: Any) -> None:
    assert _own_doc(obj), f"{obj!r} has no docstring"


def test_public_lists_are_not_empty() -> None:
    # a guard for the walk above: it must find what it is meant to check
    ids = {p.id for p in public_names()}
    assert "errorkit.captured" in ids
    assert "datalayer.DataLayer.get_client_by_phone" in ids
    assert "datalayer.Database.transaction" in ids


def test_pydoc_captured_reads_well() -> None:
    import errorkit

    text = pydoc.render_doc(errorkit.captured, renderer=pydoc.plaintext)
    signature = text.splitlines()[2]
    for parameter in (
        "component",
        "operation: 'str | None' = None",
        "reraise",
        "default_factory",
        "expected",
    ):
        assert parameter in signature
    for idea in ("Sentry event", "operation_failed", "expected", "default_factory", "slow_ms"):
        assert idea in text


def test_a_boundary_keeps_the_facade_method_readable() -> None:
    from datalayer import DataLayer

    text = pydoc.render_doc(DataLayer.get_client_by_phone, renderer=pydoc.plaintext)
    assert "get_client_by_phone(self, phone: 'str', company_id: 'int | None' = None)" in text
    assert "E.164" in text
