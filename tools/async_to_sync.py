#!/usr/bin/env python3
"""Generate the sync twins of datalayer's async modules.

The async code is the source (``*_async.py``); each sync module is generated
from it, as psycopg_pool generates ``pool.py`` from ``pool_async.py``, so the
two never drift and a bug is fixed once. A test runs ``--check`` and fails when
a generated file is stale.

The conversion works on tokens, so comments and docstrings survive:

- ``async def`` / ``async with`` / ``async for`` lose ``async``; ``await`` goes;
- names are renamed: ``AsyncX`` -> ``X``, ``x_async`` -> ``x``, plus the explicit
  pairs in ``RENAMES`` (``asyncio`` -> ``time`` is for ``asyncio.sleep`` only);
- the same renames apply inside strings and comments, word by word;
- lines between ``# <async>`` and ``# </async>`` are dropped, and lines between
  ``# <sync>`` and ``# </sync>`` (written commented out) are uncommented: the
  few places where the two sides really differ.

The result is formatted with ruff (unused imports dropped, imports sorted).

Usage: ``python tools/async_to_sync.py`` writes every generated file;
``--check`` writes nothing and exits 1 if one would change.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Async source -> generated sync module, relative to the repository root.
SOURCES: dict[str, str] = {
    "datalayer/_database_async.py": "datalayer/_database.py",
    "datalayer/_migrate_async.py": "datalayer/_migrate.py",
    "datalayer/_facade_async.py": "datalayer/_facade.py",
    "datalayer/repositories/base_async.py": "datalayer/repositories/base.py",
    "datalayer/repositories/bookings_async.py": "datalayer/repositories/bookings.py",
    "datalayer/repositories/clients_async.py": "datalayer/repositories/clients.py",
    "datalayer/repositories/companies_async.py": "datalayer/repositories/companies.py",
    "datalayer/repositories/dialog_contexts_async.py": (
        "datalayer/repositories/dialog_contexts.py"
    ),
    "datalayer/repositories/services_async.py": "datalayer/repositories/services.py",
    "datalayer/repositories/staff_async.py": "datalayer/repositories/staff.py",
    "datalayer/repositories/staff_schedules_async.py": (
        "datalayer/repositories/staff_schedules.py"
    ),
    "datalayer/whatsapp/_store_async.py": "datalayer/whatsapp/_store.py",
    "datalayer/whatsapp/_health_async.py": "datalayer/whatsapp/_health.py",
    "datalayer/whatsapp/_cleanup_async.py": "datalayer/whatsapp/_cleanup.py",
}

RENAMES: dict[str, str] = {
    "AbstractAsyncContextManager": "AbstractContextManager",
    "asynccontextmanager": "contextmanager",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "aclose": "close",
    # For asyncio.sleep only: any other asyncio use sits in an '# <async>' block.
    "asyncio": "time",
}
#: Renamed as code only, never inside strings and comments.
_CODE_ONLY = frozenset({"asyncio"})

_ASYNC_NAME = re.compile(r"\b(_?)Async([A-Z]\w*)")
_ASYNC_SUFFIX = re.compile(r"\b(\w+?)_async\b")
_EXPLICIT = re.compile(
    r"\b(" + "|".join(re.escape(name) for name in RENAMES if name not in _CODE_ONLY) + r")\b"
)
_KEYWORDS_IN_TEXT = re.compile(r"\b(?:async (?=def|with|for)|await )")
_MARKER = re.compile(r"^\s*# <(/?)(async|sync)>\s*$")

HEADER = (
    "# WARNING: generated from {source} by tools/async_to_sync.py: do not edit.\n"
    "# Change the async source, then run `python tools/async_to_sync.py`.\n"
)


def rename(name: str) -> str:
    """The sync name of one identifier."""
    if name in RENAMES:
        return RENAMES[name]
    for prefix in ("Async", "_Async"):
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isupper():
            return name[: len(prefix) - 5] + name[len(prefix) :]
    if name.endswith("_async") and len(name) > 6:
        return name[:-6]
    return name


def rename_text(text: str) -> str:
    """Renames applied inside a string or a comment, word by word."""
    text = _KEYWORDS_IN_TEXT.sub("", text)
    text = _EXPLICIT.sub(lambda m: RENAMES[m.group(1)], text)
    text = _ASYNC_NAME.sub(r"\1\2", text)
    return _ASYNC_SUFFIX.sub(r"\1", text)


def apply_markers(source: str, path: str) -> str:
    """Drop the ``<async>`` blocks and uncomment the ``<sync>`` ones."""
    out: list[str] = []
    block: str | None = None
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        marker = _MARKER.match(line)
        if marker:
            closing, kind = marker.group(1) == "/", marker.group(2)
            if closing != (block == kind) or (not closing and block is not None):
                raise SystemExit(f"{path}:{number}: unbalanced '# <{kind}>' marker")
            block = None if closing else kind
            continue
        if block == "async":
            continue
        if block == "sync":
            stripped = line.lstrip()
            indent = line[: len(line) - len(stripped)]
            if stripped.startswith("# "):
                line = indent + stripped[2:]
            elif stripped.rstrip() == "#":
                line = "\n"
            elif stripped.strip():
                raise SystemExit(f"{path}:{number}: a '# <sync>' line must be commented out")
        out.append(line)
    if block is not None:
        raise SystemExit(f"{path}: '# <{block}>' is never closed")
    return "".join(out)


def convert_tokens(source: str) -> str:
    """The token-level conversion: keywords dropped, names renamed."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def position(row: int, col: int) -> int:
        return offsets[row - 1] + col

    edits: list[tuple[int, int, str]] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for index, token in enumerate(tokens):
        start = position(*token.start)
        end = position(*token.end)
        if token.type == tokenize.NAME:
            if token.string in ("async", "await"):
                following = tokens[index + 1]
                if token.string == "async" and following.string not in ("def", "with", "for"):
                    continue
                # Drop the keyword and the blank space after it.
                edits.append((start, position(*following.start), ""))
                continue
            renamed = rename(token.string)
            if renamed != token.string:
                edits.append((start, end, renamed))
        elif token.type in (tokenize.STRING, tokenize.COMMENT):
            renamed = rename_text(token.string)
            if renamed != token.string:
                edits.append((start, end, renamed))
    result = source
    for start, end, text in reversed(edits):
        result = result[:start] + text + result[end:]
    return result


def _ruff(args: list[str], text: str, filename: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", filename, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode not in (0, 1) or not done.stdout:
        raise SystemExit(f"ruff {' '.join(args)} failed on {filename}:\n{done.stderr}")
    return done.stdout


def generate(source_path: str, target_path: str, root: Path = ROOT) -> str:
    """The generated text of one sync module."""
    source = (root / source_path).read_text(encoding="utf-8")
    text = convert_tokens(apply_markers(source, source_path))
    text = HEADER.format(source=Path(source_path).name) + text
    text = _ruff(["check", "--quiet", "--fix-only", "--select", "I,F401"], text, target_path)
    return _ruff(["format", "--quiet"], text, target_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale"
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository (default: this one)"
    )
    args = parser.parse_args(argv)
    stale: list[str] = []
    for source_path, target_path in SOURCES.items():
        text = generate(source_path, target_path, args.root)
        target = args.root / target_path
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(target_path)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"generated {target_path}")
    if args.check and stale:
        for path in stale:
            print(f"stale: {path} (run python tools/async_to_sync.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
