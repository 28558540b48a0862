"""The ``errorkit`` command line: ``errorkit logs summary`` and ``errorkit logs tail``.

Both read errorkit's JSON log lines from files (``.gz`` too) or standard input,
one line at a time. Exit codes: 0 ok, 1 an input could not be read (what could
be read is still used), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from errorkit._logs import (
    LEVELS,
    LineFilter,
    UnreadableInput,
    follow,
    parse_line,
    parse_time_bound,
    read_sources,
)
from errorkit._summary import Summary
from errorkit._tail import renderer

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Run:
    """What one command run remembers: unreadable inputs, for the exit code."""

    def __init__(self) -> None:
        self.unreadable: list[str] = []

    def unreadable_input(self, error: UnreadableInput) -> None:
        self.unreadable.append(str(error))
        print(f"errorkit logs: cannot read {error}", file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return EXIT_UNREADABLE if self.unreadable else EXIT_OK


# --- summary ---------------------------------------------------------------------------


def _cmd_summary(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    keep = _line_filter(args, parser)
    run = _Run()
    summary = Summary(keep if keep.active else None)
    summary.consume(read_sources(args.files, run.unreadable_input))
    data = summary.as_dict()
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_summary(data, sys.stdout)
    sys.stdout.flush()
    return run.exit_code


def _table(rows: list[list[str]], out: TextIO, right: set[int]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        print("  " + "  ".join(cells).rstrip(), file=out)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def _print_summary(data: dict[str, Any], out: TextIO) -> None:
    window = ""
    if data["first_timestamp"]:
        window = f", {data['first_timestamp']} to {data['last_timestamp']}"
    print(
        f"{data['lines']} lines{window}; {data['unparsed']} not errorkit JSON"
        + (f", {data['filtered']} outside the filters" if data["filtered"] else ""),
        file=out,
    )
    failures = data["failures"]
    held = sum(f["suppressed"] for f in failures)
    total = sum(f["count"] for f in failures)
    print(
        f"\nfailures: {total}" + (f" ({held} held back by storm control)" if held else ""),
        file=out,
    )
    if failures:
        rows = [["component", "operation", "kind", "count", "held", "p50 ms", "p95 ms", "max ms"]]
        rows += [
            [
                f["component"],
                f["operation"],
                f["error_kind"],
                str(f["count"]),
                str(f["suppressed"]),
                _ms(f["p50_ms"]),
                _ms(f["p95_ms"]),
                _ms(f["max_ms"]),
            ]
            for f in failures
        ]
        _table(rows, out, right={3, 4, 5, 6, 7})
        for f in failures:
            if f["last_error_message"]:
                types = ", ".join(f["error_types"])
                print(
                    f"  {f['component']}.{f['operation']} last ({types}): "
                    f"{f['last_error_message']}",
                    file=out,
                )
    for title, section, with_kind in (
        ("rejections", data["rejections"], True),
        ("slow calls", data["slow"], False),
    ):
        print(f"\n{title}: {sum(item['count'] for item in section)}", file=out)
        if not section:
            continue
        header = ["component", "operation", *(["kind"] if with_kind else []), "count"]
        rows = [[*header, "p50 ms", "p95 ms", "max ms"]]
        rows += [
            [
                item["component"],
                item["operation"],
                *([item["error_kind"]] if with_kind else []),
                str(item["count"]),
                _ms(item["p50_ms"]),
                _ms(item["p95_ms"]),
                _ms(item["max_ms"]),
            ]
            for item in section
        ]
        first_number = len(header) - 1
        _table(rows, out, right=set(range(first_number, len(rows[0]))))


# --- tail ------------------------------------------------------------------------------


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _cmd_tail(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    keep = _line_filter(args, parser)
    run = _Run()
    if args.follow and args.file not in (None, "-"):
        lines: Iterable[bytes] = follow(args.file)
    else:
        lines = read_sources([args.file] if args.file else [], run.unreadable_input)
    render = renderer(colors=_wants_colour(sys.stdout))
    shown = _shown(lines, keep)
    if args.lines is not None:
        shown = _last(shown, args.lines)
    write, flush = sys.stdout.write, sys.stdout.flush
    try:
        for item in shown:
            if item is None:  # follow() caught up with the file: show what comes promptly
                flush()
                continue
            write((render(item) if isinstance(item, dict) else item) + "\n")
            if args.follow:
                flush()
    except UnreadableInput as error:
        run.unreadable_input(error)
    flush()
    return run.exit_code


Shown = dict[str, Any] | str | None


def _shown(lines: Iterable[bytes], keep: LineFilter) -> Iterator[Shown]:
    """Our records that pass ``keep``; a foreign line as text, when nothing filters;
    None where :func:`follow` says it reached the end of the file."""
    for raw in lines:
        if not raw:
            yield None
            continue
        record = parse_line(raw)
        if record is None:
            if not keep.active and raw.strip():
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
        elif keep(record):
            yield record


def _last(shown: Iterator[Shown], count: int) -> Iterator[Shown]:
    """The last ``count`` items up to the end of the input, or, when following, up to the
    end of the file as it was; then (following) everything after."""
    backlog: deque[Shown] | None = deque(maxlen=count)
    for item in shown:
        if backlog is None:
            yield item
        elif item is None:
            yield from backlog
            backlog = None
            yield item
        else:
            backlog.append(item)
    if backlog is not None:
        yield from backlog


# --- arguments -------------------------------------------------------------------------


def _line_filter(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LineFilter:
    try:
        since = parse_time_bound(args.since) if args.since else None
        until = parse_time_bound(args.until) if args.until else None
    except ValueError as exc:
        parser.error(str(exc))
    return LineFilter(
        since=since,
        until=until,
        level=LEVELS[args.level] if getattr(args, "level", None) else None,
        component=args.component,
        operation=args.operation,
        request_id=getattr(args, "request_id", None),
    )


def _common_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="only lines at or after TIME: ISO 8601 (UTC unless an offset is given) "
        "or a span back from now (90s, 15m, 2h, 1d)",
    )
    parser.add_argument("--until", metavar="TIME", help="only lines before TIME (same forms)")
    parser.add_argument("--component", help="only lines of this component")
    parser.add_argument("--operation", help="only lines of this operation")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="errorkit",
        description="Read errorkit's JSON log lines.",
        epilog="Exit codes: 0 ok, 1 an input could not be read, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    logs = commands.add_parser("logs", help="summarise or follow JSON log lines")
    sub = logs.add_subparsers(dest="logs_command", metavar="COMMAND", required=True)

    summary = sub.add_parser(
        "summary",
        help="failures (storm-held ones included), rejections and slow calls, per operation",
        description="Failures per component, operation and error kind (count includes the "
        "failures storm control held back), rejections and slow calls, with p50/p95/max "
        "duration_ms. Lines that are not errorkit JSON are counted and skipped.",
    )
    summary.add_argument(
        "files", nargs="*", metavar="FILE", help="log files, .gz too (default: standard input)"
    )
    _common_filters(summary)
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    summary.set_defaults(func=_cmd_summary, parser=summary)

    tail = sub.add_parser(
        "tail",
        help="the lines rendered for a person (colour on a terminal)",
        description="Render JSON log lines for a person with structlog's console renderer.",
    )
    tail.add_argument(
        "file", nargs="?", metavar="FILE", help="a log file, .gz too (default: standard input)"
    )
    tail.add_argument(
        "-f", "--follow", action="store_true", help="keep reading what is appended (tail -F)"
    )
    tail.add_argument(
        "-n", "--lines", type=_positive, metavar="N", help="only the last N lines shown"
    )
    tail.add_argument(
        "--level", choices=sorted(LEVELS, key=LEVELS.__getitem__), help="lowest level"
    )
    tail.add_argument("--request-id", help="only lines of this request id")
    _common_filters(tail)
    tail.set_defaults(func=_cmd_tail, parser=tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``errorkit`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args, args.parser)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED if not getattr(args, "follow", False) else EXIT_OK
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
