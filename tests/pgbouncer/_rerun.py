"""Re-run another test module's tests through PgBouncer, without touching that module.

A module here calls ``rerun(globals(), "test_facade_reads.py")``: every test,
test class and fixture of ``tests/test_facade_reads.py`` is bound into it, so
pytest collects them again under ``tests/pgbouncer/``, where this folder's
conftest overrides ``db`` and ``clean_db`` with a Database in PgBouncer mode
behind the suite's PgBouncer. The source module is the very object pytest
imported for the direct run (same name), so nothing runs twice at import.

Tests that build their own connection from ``pg_url`` (rather than from
``db``/``clean_db``) would only repeat the direct run; conftest deselects them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent.parent

#: Set on every module built by :func:`rerun`; conftest uses it to find the re-run items.
MARKER = "__rerun_via_pgbouncer__"


def _module_name(path: Path) -> str:
    """The name pytest's default (prepend) import mode gives ``path``."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.append(folder.name)
        folder = folder.parent
    return ".".join(reversed(parts))


def import_test_module(relative: str) -> ModuleType:
    path = (TESTS_DIR / relative).resolve()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            return module
    name = _module_name(path)
    try:
        return importlib.import_module(name)
    except ImportError:
        # Another import mode: load it under a private name of our own.
        private = f"_via_pgbouncer_{name.replace('.', '_')}"
        spec = importlib.util.spec_from_file_location(private, path)
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[private] = module
        spec.loader.exec_module(module)
        return module


def rerun(namespace: dict[str, Any], *relatives: str) -> None:
    """Bind each module's public names (tests, classes, fixtures, pytestmark) into ``namespace``.

    List a source module's own conftest too when its tests need that conftest's
    fixtures (a conftest's fixtures are only visible below its folder).
    """
    for relative in relatives:
        module = import_test_module(relative)
        for name, value in vars(module).items():
            if name.startswith("_") or isinstance(value, ModuleType):
                continue
            namespace[name] = value
    namespace[MARKER] = relatives
