"""Terminal output for the CLI: aligned tables, status colours, a progress bar.

Colour only when the stream is a terminal and ``NO_COLOR`` is unset (or empty);
the progress bar only when stderr is a terminal, so piped output stays clean.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["Console", "ProgressBar"]

_COLOURS = {"green": "32", "yellow": "33", "red": "31", "bold": "1", "dim": "2"}
_STATUS_COLOURS = {
    "ok": "green",
    "healthy": "green",
    "warning": "yellow",
    "critical": "red",
    "error": "red",
    "failed": "red",
}


_ANSI = re.compile(r"\033\[[0-9;]*m")


def _width(text: str) -> int:
    """Printed width: colour codes take no room."""
    return len(_ANSI.sub("", text))


def _pad(text: str, width: int, *, right: bool = False) -> str:
    room = " " * max(width - _width(text), 0)
    return room + text if right else text + room


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Console:
    """Writes a command's own output (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.colour = _wants_colour(self.stream) if colour is None else colour

    def print(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def style(self, text: str, colour: str) -> str:
        if not self.colour or colour not in _COLOURS:
            return text
        return f"\033[{_COLOURS[colour]}m{text}\033[0m"

    def status(self, status: str) -> str:
        """``status`` coloured by meaning (ok green, warning yellow, error red)."""
        return self.style(status, _STATUS_COLOURS.get(status, "bold"))

    def heading(self, text: str) -> None:
        self.print(self.style(text, "bold"))

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Rows aligned under ``headers``; numbers right-aligned."""
        body = [[_cell(value) for value in row] for row in rows]
        numeric = [
            bool(body) and all(_is_number(row[i]) for row in body if i < len(row))
            for i in range(len(headers))
        ]
        widths = [
            max([len(header), *(_width(row[i]) for row in body if i < len(row))])
            for i, header in enumerate(headers)
        ]
        self.print(
            "  ".join(
                self.style(
                    _pad(header, widths[i], right=numeric[i])
                    if numeric[i] or i < len(headers) - 1
                    else header,
                    "bold",
                )
                for i, header in enumerate(headers)
            )
        )
        self.print("  ".join("-" * w for w in widths))
        for row in body:
            cells = [_pad(value, widths[i], right=numeric[i]) for i, value in enumerate(row)]
            self.print("  ".join(cells).rstrip())

    def fields(self, values: Mapping[str, Any]) -> None:
        """A two-column ``name  value`` listing."""
        width = max((len(key) for key in values), default=0)
        for key, value in values.items():
            self.print(f"{key.ljust(width)}  {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class ProgressBar:
    """``bar(done, total)`` draws ``label [#####.....] done/total`` on a terminal stderr.

    Does nothing when the stream is not a terminal. Redraws at most every
    0.1 s (and always at the end); call :meth:`close` to end the line.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.width = width
        self._drawn = False
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self._drawn = True
        if done >= total:  # finished: end the line before anything else is logged
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
