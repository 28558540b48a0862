"""The public API type-checks the way users write it (mypy --strict on a user module)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

REPO = Path(__file__).resolve().parents[2]

USER_CODE = textwrap.dedent(
    """
    from collections.abc import AsyncIterator, Iterator

    import errorkit
    from errorkit import Block, Boundary, Failure, captured, classify, propagate
    from errorkit import register_classifier, scrub
    from errorkit.testing import capture_events, capture_logs


    @captured("svc", "add")
    def add(a: int, b: int) -> int:
        return a + b


    @captured("svc", reraise=False, default_factory=list)
    async def fetch(key: str) -> list[str]:
        return [key]


    @captured("svc")
    def rows() -> Iterator[int]:
        yield 1


    @captured("svc")
    async def stream() -> AsyncIterator[int]:
        yield 1


    def strict(failure: Failure) -> bool:
        return failure.instance is not None and isinstance(failure.exception, KeyError)


    class Repo:
        @captured("repo", reraise=strict, expected=(ValueError,), extra={"table": "t"})
        def read(self, key: str) -> str | None:
            return key


    def kind_of(exc: BaseException) -> str | None:
        return "conflict" if isinstance(exc, KeyError) else None


    def main() -> None:
        total: int = add(1, 2)
        register_classifier(kind_of)
        kind: str = classify(KeyError())
        masked: object = scrub({"password": "x"})
        with captured("job", "run", reraise=False) as boundary:
            pass
        b: Block = boundary
        error: Exception | None = b.error
        event_id: str | None = b.event_id
        shared: Boundary = b.boundary
        last_error: Exception | None = shared.error
        carried = propagate(add)
        carried_total: int = carried(1, 2)
        with capture_events() as events, capture_logs() as logs:
            first: dict[str, object] = events[0] if events else {}
            line: dict[str, object] = logs[0] if logs else {}
        errorkit.setup("svc", env_file=None, events_per_minute=5)
        errorkit.flush_suppressed()
        errorkit.get_logger(__name__).info("done", total=total, kind=kind)
        print(masked, error, event_id, first, line, Repo().read("k"), list(rows()))
    """
)


@pytest.mark.slow
def test_public_api_type_checks_for_users(tmp_path: Path) -> None:
    module = tmp_path / "user_module.py"
    module.write_text(USER_CODE)
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(module),
        ]
    )
    assert status == 0, stdout + stderr
