"""The boundary around plain functions, methods and blocks: reporting and policy."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from errorkit import Block, Failure, captured


class Boom(Exception):
    pass


def failed_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == "operation_failed"]


def test_failure_reports_one_event_and_one_line_then_reraises_same_object(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    error = Boom("broken")

    @captured("billing", "charge")
    def charge() -> None:
        raise error

    with pytest.raises(Boom) as info:
        charge()
    assert info.value is error
    # The traceback still reaches the line that raised.
    assert info.traceback[-1].name == "charge"

    assert len(errorkit_events) == 1
    event = errorkit_events[0]
    assert event["tags"]["component"] == "billing"
    assert event["tags"]["operation"] == "charge"
    assert event["tags"]["error.kind"] == "internal"
    assert event["fingerprint"] == ["billing", "charge", f"{__name__}.Boom"]
    assert event["level"] == "error"
    assert event["contexts"]["errorkit"]["duration_ms"] >= 0

    (line,) = failed_lines(errorkit_logs)
    assert line["component"] == "billing"
    assert line["operation"] == "charge"
    assert line["level"] == "error"
    assert line["error_type"] == f"{__name__}.Boom"
    assert line["error_kind"] == "internal"
    assert line["error_message"] == "broken"
    assert line["sentry_event_id"] == event["event_id"]
    assert isinstance(line["duration_ms"], float)
    # structured traceback, without local variables
    frames = line["exception"][0]["frames"]
    assert frames and all("locals" not in frame or frame["locals"] is None for frame in frames)


def test_operation_defaults_to_function_name(errorkit_events: list[dict[str, Any]]) -> None:
    @captured("billing")
    def refund() -> None:
        raise Boom

    with pytest.raises(Boom):
        refund()
    assert errorkit_events[0]["tags"]["operation"] == "refund"


def test_metadata_preserved() -> None:
    def original(a: int, b: str = "x", *, c: float = 1.0) -> str:
        """Docstring here."""
        return b

    decorated = captured("c")(original)
    assert decorated.__name__ == "original"
    assert decorated.__doc__ == "Docstring here."
    assert inspect.signature(decorated) == inspect.signature(original)
    assert not inspect.iscoroutinefunction(decorated)
    assert decorated(1) == "x"


def test_reraise_false_returns_default(errorkit_events: list[dict[str, Any]]) -> None:
    @captured("c", reraise=False, default=-1)
    def f() -> int:
        raise Boom

    assert f() == -1
    assert len(errorkit_events) == 1


def test_default_factory_returns_a_fresh_list_each_time() -> None:
    @captured("c", reraise=False, default_factory=list)
    def f() -> list[int]:
        raise Boom

    first, second = f(), f()
    assert first == [] and second == []
    assert first is not second
    first.append(1)
    assert f() == []


def test_default_and_default_factory_together_is_an_error() -> None:
    with pytest.raises(ValueError):
        captured("c", default=1, default_factory=list)


def test_reraise_callable_decides_at_failure_time_with_the_instance() -> None:
    seen: list[Failure] = []

    class Repo:
        def __init__(self, strict: bool) -> None:
            self.strict = strict

        @captured("repo", reraise=lambda failure: seen.append(failure) or failure.instance.strict)
        def read(self) -> str:
            raise Boom("down")

    assert Repo(strict=False).read() is None
    strict = Repo(strict=True)
    with pytest.raises(Boom):
        strict.read()
    assert seen[1].instance is strict
    assert seen[1].component == "repo" and seen[1].operation == "read"
    assert isinstance(seen[1].exception, Boom)


def test_reraise_callable_that_raises_reraises_the_original() -> None:
    def broken(failure: Failure) -> bool:
        raise RuntimeError("policy bug")

    @captured("c", reraise=broken)
    def f() -> None:
        raise Boom

    with pytest.raises(Boom):
        f()


def test_expected_is_reraised_with_a_warning_and_no_event(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    @captured("c", "lookup", reraise=False, expected=(KeyError,))
    def f() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        f()
    assert errorkit_events == []
    assert failed_lines(errorkit_logs) == []
    (line,) = [line for line in errorkit_logs if line["event"] == "operation_rejected"]
    assert line["level"] == "warning"
    assert line["operation"] == "lookup"


class Service:
    factor = 3

    @captured("svc")
    def method(self, x: int) -> int:
        raise Boom(x)

    @captured("svc")
    @classmethod
    def klass(cls, x: int) -> int:
        raise Boom(x)

    @classmethod
    @captured("svc")
    def klass_inner(cls, x: int) -> int:
        raise Boom(x)

    @captured("svc")
    @staticmethod
    def static(x: int) -> int:
        raise Boom(x)

    @captured("svc", reraise=False, default=0)
    def ok(self, x: int) -> int:
        return x * self.factor


@pytest.mark.parametrize(
    ("call", "operation"),
    [
        (lambda: Service().method(1), "method"),
        (lambda: Service.klass(1), "klass"),
        (lambda: Service.klass_inner(1), "klass_inner"),
        (lambda: Service.static(1), "static"),
        (lambda: Service().static(1), "static"),
    ],
)
def test_methods_report_with_their_name_and_without_self(
    errorkit_events: list[dict[str, Any]], call: Any, operation: str
) -> None:
    with pytest.raises(Boom):
        call()
    (event,) = errorkit_events
    assert event["tags"]["operation"] == operation
    assert event["contexts"]["errorkit"]["arguments"] == {"x": "1"}


def test_method_success_and_metadata() -> None:
    assert Service().ok(2) == 6
    assert list(inspect.signature(Service.method).parameters) == ["self", "x"]
    assert list(inspect.signature(Service().method).parameters) == ["x"]
    assert list(inspect.signature(Service.klass).parameters) == ["x"]


def test_failure_instance_is_cls_for_classmethods() -> None:
    seen: list[Failure] = []

    class K:
        @captured("k", reraise=lambda f: seen.append(f) or False)
        @classmethod
        def c(cls) -> None:
            raise Boom

        @captured("k", reraise=lambda f: seen.append(f) or False)
        @staticmethod
        def s() -> None:
            raise Boom

    K.c()
    K.s()
    assert seen[0].instance is K
    assert seen[1].instance is None


def test_context_manager_records_error_and_event_id(
    errorkit_events: list[dict[str, Any]],
) -> None:
    shared = captured("jobs", "nightly")
    with pytest.raises(Boom), shared as block:
        raise Boom("x")
    assert isinstance(block, Block)
    assert block.boundary is shared
    assert isinstance(block.error, Boom)
    assert block.event_id == errorkit_events[0]["event_id"]
    assert errorkit_events[0]["tags"]["operation"] == "nightly"
    # Used sequentially, the boundary repeats its last block's outcome.
    assert shared.error is block.error
    assert shared.event_id == block.event_id


def test_context_manager_reraise_false_suppresses() -> None:
    with captured("jobs", "nightly", reraise=False) as boundary:
        raise Boom("x")
    assert isinstance(boundary.error, Boom)


def test_context_manager_success_leaves_no_error(errorkit_events: list[dict[str, Any]]) -> None:
    with captured("jobs", "nightly") as boundary:
        pass
    assert boundary.error is None and boundary.event_id is None
    assert errorkit_events == []


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_pass_through_untouched(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]], exc_type: type
) -> None:
    @captured("c", reraise=False, default="swallowed")
    def f() -> str:
        raise exc_type()

    with pytest.raises(exc_type):
        f()
    with pytest.raises(exc_type), captured("c", reraise=False):
        raise exc_type()
    assert errorkit_events == []
    assert [line for line in errorkit_logs if line["level"] != "debug"] == []


def test_success_logs_completed_at_debug(errorkit_logs: list[dict[str, Any]]) -> None:
    @captured("c", "quick")
    def f() -> int:
        return 1

    assert f() == 1
    (line,) = errorkit_logs
    assert line["event"] == "operation_completed"
    assert line["level"] == "debug"
    assert line["operation"] == "quick"
    assert line["duration_ms"] >= 0


def test_completed_line_is_not_built_when_debug_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from errorkit import _boundary
    from errorkit.testing import capture_logs

    built: list[float] = []
    monkeypatch.setattr(_boundary.Boundary, "_succeeded", lambda self, ms, slow: built.append(ms))

    @captured("c", "quick")
    def f() -> int:
        return 1

    with capture_logs(level="info") as logs:
        f()
    assert logs == []
    assert built == []  # not built and then filtered: not built at all


def test_slow_call_logs_a_warning(errorkit_logs: list[dict[str, Any]]) -> None:
    import time

    @captured("c", "slow", slow_ms=5)
    def f() -> None:
        time.sleep(0.02)

    f()
    (line,) = [line for line in errorkit_logs if line["event"] == "operation_slow"]
    assert line["level"] == "warning"
    assert line["duration_ms"] >= 5
    assert line["slow_ms"] == 5


def test_slow_ms_default_comes_from_settings(
    errorkit_logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from errorkit._config import settings

    monkeypatch.setattr(settings, "slow_ms", 1.0)

    @captured("c", "slowish")
    def f() -> None:
        time.sleep(0.01)

    f()
    assert [line["event"] for line in errorkit_logs] == ["operation_slow"]


@pytest.mark.parametrize(("boundary_ms", "setting_ms"), [(0, 1.0), (None, 0.0), (0, 0.0)])
def test_slow_ms_zero_turns_the_warning_off(
    boundary_ms: float | None,
    setting_ms: float,
    errorkit_logs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from errorkit import _boundary
    from errorkit._config import settings

    monkeypatch.setattr(settings, "slow_ms", setting_ms)
    monkeypatch.setattr(settings, "debug", False)  # no operation_completed line either
    built: list[float] = []
    monkeypatch.setattr(_boundary.Boundary, "_succeeded", lambda self, ms, slow: built.append(ms))

    @captured("c", "slow", slow_ms=boundary_ms)
    def f() -> None:
        time.sleep(0.01)

    f()
    assert errorkit_logs == []
    assert built == []  # 0 is "off", not "every call is slow": nothing is even built


def test_arguments_are_bound_by_name_with_extra(errorkit_events: list[dict[str, Any]]) -> None:
    @captured("c", extra={"tenant": 7, "a": "overridden"})
    def f(a: int, b: str = "dflt", *rest: int, **kw: Any) -> None:
        raise Boom

    with pytest.raises(Boom):
        f(1, "two", 3, 4, flag=True)
    args = errorkit_events[0]["contexts"]["errorkit"]["arguments"]
    assert args == {
        "a": "'overridden'",
        "b": "'two'",
        "rest": "(3, 4)",
        "kw": "{'flag': True}",
        "tenant": "7",
    }


def test_extra_callable_replaces_arguments(errorkit_events: list[dict[str, Any]]) -> None:
    @captured("c", extra=lambda bound: {"sum": bound["a"] + bound["b"]})
    def f(a: int, b: int) -> None:
        raise Boom

    with pytest.raises(Boom):
        f(2, 3)
    assert errorkit_events[0]["contexts"]["errorkit"]["arguments"] == {"sum": "5"}


def test_extra_callable_that_raises_costs_a_fallback_text(
    errorkit_events: list[dict[str, Any]],
) -> None:
    @captured("c", reraise=False, extra=lambda bound: 1 / 0)
    def f(a: int) -> None:
        raise Boom

    assert f(1) is None
    args = errorkit_events[0]["contexts"]["errorkit"]["arguments"]
    assert args["extra_error"] == "<extra failed: ZeroDivisionError>"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 10_000_000


def test_unrepresentable_and_huge_arguments_are_bounded(
    errorkit_events: list[dict[str, Any]], errorkit_logs: list[dict[str, Any]]
) -> None:
    import json

    @captured("c", reraise=False)
    def f(bad: Any, huge: Any, big_text: str) -> None:
        raise Boom

    f(BadRepr(), HugeRepr(), "y" * 10_000_000)
    (event,) = errorkit_events
    args = event["contexts"]["errorkit"]["arguments"]
    assert "BadRepr" in args["bad"]
    assert len(args["huge"]) <= 600
    assert len(args["big_text"]) <= 600
    assert len(json.dumps(event)) < 100_000
    assert len(failed_lines(errorkit_logs)) == 1


def test_lazy_binding_never_runs_on_success(monkeypatch: pytest.MonkeyPatch) -> None:
    import errorkit._arguments as arguments

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bound on the success path")

    monkeypatch.setattr(arguments.inspect, "signature", explode)

    @captured("c")
    def f(a: int) -> int:
        return a

    assert f(1) == 1


def test_exception_refusing_attributes_is_still_reported(
    errorkit_events: list[dict[str, Any]],
) -> None:
    class Frozen(Exception):
        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError(name)

    @captured("c", reraise=False)
    def f() -> None:
        raise Frozen

    f()
    assert len(errorkit_events) == 1


def test_traceback_object_is_kept() -> None:
    @captured("c")
    def f() -> None:
        raise Boom

    try:
        f()
    except Boom:
        tb = sys.exc_info()[2]
        names = []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert names[-1] == "f"


def test_tags_of_one_failure_do_not_leak_into_the_next_event(
    errorkit_events: list[dict[str, Any]],
) -> None:
    import sentry_sdk

    @captured("billing", "charge", reraise=False)
    def charge() -> None:
        raise Boom

    charge()
    sentry_sdk.capture_message("unrelated")
    first, second = errorkit_events
    assert first["tags"]["component"] == "billing"
    for key in ("component", "operation", "error.kind"):
        assert key not in second.get("tags", {})
    assert "errorkit" not in second.get("contexts", {})
    assert second.get("fingerprint") != first["fingerprint"]


def test_transient_and_timeout_kinds_go_at_warning(errorkit_events: list[dict[str, Any]]) -> None:
    @captured("net", reraise=False)
    def call(exc: Exception) -> None:
        raise exc

    call(ConnectionResetError("reset"))
    call(TimeoutError("slow"))
    call(ValueError("bad"))
    assert [(e["tags"]["error.kind"], e["level"]) for e in errorkit_events] == [
        ("transient", "warning"),
        ("timeout", "warning"),
        ("invalid", "error"),
    ]


def test_register_classifier_teaches_kinds() -> None:
    from errorkit import classify, register_classifier
    from errorkit._classify import unregister_classifier

    class Missing(Exception):
        pass

    def mine(exc: BaseException) -> str | None:
        return "not_found" if isinstance(exc, Missing) else None

    def broken(exc: BaseException) -> str | None:
        raise RuntimeError

    def nonsense(exc: BaseException) -> str | None:
        return "catastrophic"

    assert classify(Missing()) == "internal"
    for fn in (mine, broken, nonsense):
        register_classifier(fn)
    try:
        assert classify(Missing()) == "not_found"
        assert classify(KeyError()) == "internal"
        assert classify(ValueError()) == "invalid"
    finally:
        for fn in (mine, broken, nonsense):
            unregister_classifier(fn)
    assert classify(Missing()) == "internal"


@pytest.mark.parametrize("kind", ["function", "generator"])
def test_the_event_stack_starts_at_the_decorated_code(
    kind: str, errorkit_events: list[dict[str, Any]]
) -> None:
    """errorkit's wrapper frame is left out of the event (and Sentry does not read its source)."""

    @captured("c", "plain")
    def plain() -> None:
        raise Boom

    @captured("c", "generator")
    def generator() -> Any:
        yield 1
        raise Boom

    with pytest.raises(Boom):
        if kind == "function":
            plain()
        else:
            list(generator())
    (event,) = errorkit_events
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [frame["function"] for frame in frames] == [kind if kind == "generator" else "plain"]
    assert not any(frame.get("module", "").startswith("errorkit.") for frame in frames)


def test_sentry_failing_inside_capture_still_logs_and_keeps_policy(
    monkeypatch: pytest.MonkeyPatch,
    errorkit_events: list[dict[str, Any]],
    errorkit_logs: list[dict[str, Any]],
) -> None:
    import sentry_sdk

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("sdk bug")

    monkeypatch.setattr(sentry_sdk.Scope, "capture_exception", explode)

    @captured("c", "op", reraise=False, default="d")
    def soft() -> str:
        raise Boom

    @captured("c", "op2")
    def hard() -> None:
        raise Boom

    assert soft() == "d"
    with pytest.raises(Boom):
        hard()
    lines = failed_lines(errorkit_logs)
    assert [line["operation"] for line in lines] == ["op", "op2"]
    assert lines[0]["sentry_event_id"] is None
