"""``errorkit logs tail``: JSON log lines rendered for a person by structlog's console renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

__all__ = ["format_exception", "renderer"]

_CHAINED = {
    True: "The above exception was the direct cause of the following exception:",
    False: "During handling of the above exception, another exception occurred:",
}


def format_exception(stacks: Any) -> str:
    """A structured traceback (structlog's ``ExceptionDictTransformer`` output) as text."""
    if isinstance(stacks, str):
        return stacks
    if not isinstance(stacks, list):
        return repr(stacks)
    parts: list[str] = []
    # The list starts with the exception raised last; Python prints the oldest first.
    for stack in reversed(stacks):
        if not isinstance(stack, dict):
            continue
        lines = ["Traceback (most recent call last):"]
        for frame in stack.get("frames") or ():
            if isinstance(frame, dict):
                lines.append(
                    f'  File "{frame.get("filename", "?")}", line {frame.get("lineno", "?")},'
                    f" in {frame.get('name', '?')}"
                )
        value = stack.get("exc_value")
        lines.append(
            f"{stack.get('exc_type', '?')}: {value}" if value else f"{stack.get('exc_type')}"
        )
        lines.extend(str(note) for note in stack.get("exc_notes") or ())
        parts.append("\n".join(lines))
        if stack is not stacks[0]:
            parts.append(_CHAINED[bool(stack.get("is_cause"))])
    return "\n\n".join(parts)


def renderer(*, colors: bool) -> Callable[[dict[str, Any]], str]:
    """``render(record) -> text``: one record as structlog's ConsoleRenderer prints it."""
    console = structlog.dev.ConsoleRenderer(colors=colors)

    def render(record: dict[str, Any]) -> str:
        event = dict(record)
        if "exception" in event:
            event["exception"] = format_exception(event["exception"])
        return str(console(None, "", event))

    return render
