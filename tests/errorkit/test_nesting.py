"""Exactly once: nested boundaries report one failure one time."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from errorkit import captured


class DomainError(Exception):
    pass


def failed(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == "operation_failed"]


@captured("repo", "read_row")
def read_row() -> None:
    raise LookupError("row gone")


@captured("service", "load")
def load() -> None:
    read_row()


@captured("api", "handle")
def handle() -> None:
    load()


def test_three_nested_boundaries_give_one_event_with_the_chain(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    with pytest.raises(LookupError):
        handle()
    (event,) = errorkit_events
    assert event["tags"]["component"] == "repo"
    assert event["tags"]["operation"] == "read_row"
    assert event["contexts"]["errorkit"]["boundaries"] == [
        "api.handle",
        "service.load",
        "repo.read_row",
    ]
    (line,) = failed(errorkit_logs)
    assert line["operation"] == "read_row"


@captured("service", "translate")
def translate() -> None:
    try:
        read_row()
    except LookupError as e:
        raise DomainError("not available") from e


@captured("service", "translate_implicitly")
def translate_implicitly() -> None:
    try:
        read_row()
    except LookupError:
        raise DomainError("not available")  # noqa: B904 -- __context__ on purpose


@pytest.mark.parametrize("middle", [translate, translate_implicitly])
def test_new_exception_raised_from_a_reported_one_is_not_reported_again(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]], middle: Any
) -> None:
    @captured("api", "outer")
    def outer() -> None:
        middle()

    with pytest.raises(DomainError):
        outer()
    assert len(errorkit_events) == 1
    assert errorkit_events[0]["tags"]["operation"] == "read_row"
    assert len(failed(errorkit_logs)) == 1


def test_outer_policy_still_applies_to_an_inner_reported_failure(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("api", "soft", reraise=False, default="fallback")
    def soft() -> str:
        load()
        return "ok"

    assert soft() == "fallback"
    assert len(errorkit_events) == 1


def test_outer_context_manager_gets_the_inner_event_id(
    errorkit_events: list[dict[str, Any]],
) -> None:
    with captured("job", "run", reraise=False) as boundary:
        load()
    assert boundary.event_id == errorkit_events[0]["event_id"]
    assert isinstance(boundary.error, LookupError)


def test_unrelated_exception_in_except_block_without_chain_is_reported(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("svc", "fresh")
    def fresh() -> None:
        raise DomainError("first")

    @captured("svc", "second")
    def second() -> None:
        raise DomainError("second")

    for fn in (fresh, second):
        with pytest.raises(DomainError):
            fn()
    assert [e["tags"]["operation"] for e in errorkit_events] == ["fresh", "second"]


def test_expected_rejection_translated_to_a_failure_is_reported(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    @captured("repo", "find", expected=(KeyError,))
    def find() -> None:
        raise KeyError("k")

    @captured("svc", "must_find")
    def must_find() -> None:
        try:
            find()
        except KeyError as e:
            raise DomainError("should exist") from e

    with pytest.raises(DomainError):
        must_find()
    assert [line["event"] for line in errorkit_logs if line["level"] != "debug"] == [
        "operation_rejected",
        "operation_failed",
    ]
    assert len(errorkit_events) == 1
    assert errorkit_events[0]["tags"]["operation"] == "must_find"


def test_expected_passing_through_outer_boundaries_is_rejected_once(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    @captured("repo", "find", expected=(KeyError,))
    def find() -> None:
        raise KeyError("k")

    @captured("svc", "lookup", expected=(KeyError,))
    def lookup() -> None:
        find()

    with pytest.raises(KeyError):
        lookup()
    assert errorkit_events == []
    assert [line["event"] for line in errorkit_logs if line["level"] != "debug"] == [
        "operation_rejected"
    ]


def test_stdlib_error_log_with_exc_info_and_a_boundary_make_one_event(
    errorkit_events: list[dict[str, Any]],
) -> None:
    stdlib_logger = logging.getLogger("legacy.module")

    @captured("legacy", "work")
    def work() -> None:
        try:
            raise DomainError("legacy failure")
        except DomainError:
            stdlib_logger.error("legacy code logs it too", exc_info=True)
            raise

    with pytest.raises(DomainError):
        work()
    assert len(errorkit_events) == 1
    assert errorkit_events[0]["tags"]["operation"] == "work"


def test_chain_mixes_context_managers_decorators_and_generators(
    errorkit_events: list[dict[str, Any]],
) -> None:
    from collections.abc import Iterator

    @captured("repo", "fetch")
    def fetch(i: int) -> int:
        if i == 2:
            raise LookupError(i)
        return i

    @captured("export", "rows")
    def rows() -> Iterator[int]:
        for i in range(3):
            with captured("export", "row"):
                yield fetch(i)

    @captured("job", "run")
    def run() -> list[int]:
        with captured("job", "batch"):
            return list(rows())

    with pytest.raises(LookupError):
        run()
    (event,) = errorkit_events
    assert event["contexts"]["errorkit"]["boundaries"] == [
        "job.run",
        "job.batch",
        "export.rows",
        "export.row",
        "repo.fetch",
    ]


def test_chain_does_not_include_boundaries_that_already_returned(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("a", "done")
    def done() -> int:
        return 1

    @captured("a", "fails")
    def fails() -> None:
        done()
        with captured("a", "finished_block"):
            pass
        raise LookupError

    with pytest.raises(LookupError):
        fails()
    assert errorkit_events[0]["contexts"]["errorkit"]["boundaries"] == ["a.fails"]


def test_failure_tells_the_policy_whether_this_boundary_reported() -> None:
    from errorkit import Failure

    seen: list[Failure] = []

    def record(failure: Failure) -> bool:
        seen.append(failure)
        return True

    @captured("inner", "op", reraise=record)
    def inner() -> None:
        raise LookupError

    @captured("outer", "op", reraise=record)
    def outer() -> None:
        inner()

    with pytest.raises(LookupError):
        outer()
    assert [(f.component, f.reported) for f in seen] == [("inner", True), ("outer", False)]
    assert seen[0].exception is seen[1].exception
    assert seen[0].duration_ms >= 0
