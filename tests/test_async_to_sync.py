"""The generated sync modules are current: tools/async_to_sync.py --check finds nothing stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_sync_modules_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "tools/async_to_sync.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_whatsapp_modules_are_generated() -> None:
    for name in ("_store", "_health", "_cleanup"):
        text = (ROOT / "datalayer" / "whatsapp" / f"{name}.py").read_text(encoding="utf-8")
        assert text.startswith(f"# WARNING: generated from {name}_async.py"), name
