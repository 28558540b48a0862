"""Reading errorkit's JSON log lines: sources (files, ``.gz``, stdin), parsing, filters.

Everything streams: a line is read, judged and dropped, so memory stays the
same whatever the size of the input. A line that is not a JSON object with a
string ``event`` is "unparsed": counted by the caller, never fatal.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

__all__ = [
    "LEVELS",
    "LineFilter",
    "Source",
    "UnreadableInput",
    "follow",
    "parse_line",
    "parse_time_bound",
    "read_sources",
]

#: Severity order of the ``level`` field.
LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}

_GZIP_MAGIC = b"\x1f\x8b"
_FOLLOW_POLL_S = 0.2
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# errorkit's TimeStamper writes "2026-01-31T23:59:59.123456Z": fixed width, so such
# stamps compare as text without being parsed.
_STAMP_LENGTH = 27


class UnreadableInput(Exception):
    """A source could not be opened or read to its end (missing, no permission, bad gzip)."""


def parse_line(raw: bytes | str) -> dict[str, Any] | None:
    """The record on one log line, or None if it is not one of ours (a JSON object
    with a string ``event``)."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):  # also bytes that are not UTF-8, absurd nesting
        return None
    if type(record) is dict and type(record.get("event")) is str:
        return record
    return None


# --- sources ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One input: a path, or ``-`` for standard input."""

    name: str

    @property
    def is_stdin(self) -> bool:
        return self.name == "-"

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The source as bytes, gunzipped when it starts with the gzip magic number."""
        try:
            raw: IO[bytes] = (
                sys.stdin.buffer if self.is_stdin else open(self.name, "rb")  # noqa: SIM115
            )
        except OSError as exc:
            raise UnreadableInput(f"{self.name}: {exc.strerror or exc}") from exc
        try:
            peek = getattr(raw, "peek", None)
            head = peek(2)[:2] if peek is not None else b""
            if head == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    yield unzipped  # type: ignore[misc]
            else:
                yield raw
        finally:
            if not self.is_stdin:
                raw.close()


def read_sources(
    names: Iterable[str], on_error: Callable[[UnreadableInput], None]
) -> Iterator[bytes]:
    """Every line of every source in turn (standard input when ``names`` is empty).

    A source that cannot be opened, or fails part way (a truncated ``.gz``), is
    passed to ``on_error`` after the lines read from it; the next one is read.
    """
    for source in [Source(name) for name in names] or [Source("-")]:
        try:
            with source.open() as handle:
                yield from handle
        except UnreadableInput as exc:
            on_error(exc)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            on_error(UnreadableInput(f"{source.name}: {exc}"))


def follow(
    path: str,
    *,
    poll_s: float = _FOLLOW_POLL_S,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[bytes]:
    """The lines of ``path``, then the lines appended to it, as ``tail -F`` does.

    One empty ``b""`` marks the moment the file as it was is read to its end
    (lines always end with a newline, so it is no line). A file replaced
    (rotation) or truncated is read again from its start. Runs until ``stop()``
    is true (or the caller stops iterating).
    """
    handle: IO[bytes] | None = None
    pending = b""
    caught_up = False
    while not stop():
        if handle is None:
            try:
                handle = open(path, "rb")  # noqa: SIM115
            except FileNotFoundError:
                time.sleep(poll_s)  # rotated away and not yet recreated
                continue
            except OSError as exc:
                raise UnreadableInput(f"{path}: {exc.strerror or exc}") from exc
            pending = b""
        chunk = handle.readline()
        if chunk:
            pending += chunk
            if pending.endswith(b"\n"):
                yield pending
                pending = b""
            continue
        if not caught_up:
            caught_up = True
            yield b""
        if _replaced_or_truncated(path, handle):
            handle.close()
            handle = None
            continue
        time.sleep(poll_s)
    if handle is not None:
        handle.close()


def _replaced_or_truncated(path: str, handle: IO[bytes]) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return True
    opened = os.fstat(handle.fileno())
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev) or (
        current.st_size < handle.tell()
    )


# --- filters ---------------------------------------------------------------------------


def parse_time_bound(text: str, *, now: datetime | None = None) -> str:
    """A ``--since`` / ``--until`` value as the comparable UTC stamp text.

    ISO 8601 (``2026-01-31``, ``2026-01-31T22:00``, with or without an offset;
    without one it is UTC, as errorkit writes) or a span back from now
    (``90s``, ``15m``, ``2h``, ``1d``). Raises ValueError otherwise.
    """
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2)]
        moment = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{text!r} is not a time: give ISO 8601 (2026-01-31T22:00) "
                "or a span back from now (90s, 15m, 2h, 1d)"
            ) from None
    return _stamp(moment)


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def stamp_of(record: dict[str, Any]) -> str | None:
    """The record's ``timestamp`` as comparable UTC text, or None if it has none."""
    value = record.get("timestamp")
    if type(value) is not str:
        return None
    if len(value) == _STAMP_LENGTH and value[-1] == "Z":
        return value[:-1]
    try:
        return _stamp(datetime.fromisoformat(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class LineFilter:
    """Which records to keep. ``since`` is inclusive, ``until`` exclusive (stamp text
    from :func:`parse_time_bound`); ``level`` is the lowest level kept."""

    since: str | None = None
    until: str | None = None
    level: int | None = None
    component: str | None = None
    operation: str | None = None
    request_id: str | None = None

    @property
    def active(self) -> bool:
        return any(
            value is not None
            for value in (
                self.since,
                self.until,
                self.level,
                self.component,
                self.operation,
                self.request_id,
            )
        )

    def __call__(self, record: dict[str, Any]) -> bool:
        if self.component is not None and record.get("component") != self.component:
            return False
        if self.operation is not None and record.get("operation") != self.operation:
            return False
        if self.request_id is not None and record.get("request_id") != self.request_id:
            return False
        if self.level is not None:
            level = record.get("level")
            if LEVELS.get(level if type(level) is str else "", 0) < self.level:
                return False
        if self.since is not None or self.until is not None:
            stamp = stamp_of(record)
            if stamp is None:
                return False
            if self.since is not None and stamp < self.since:
                return False
            if self.until is not None and stamp >= self.until:
                return False
        return True
