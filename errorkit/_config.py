"""Runtime settings read from the environment (and overridden by ``setup()``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def env_float(
    environ: Mapping[str, str], name: str, default: float, *, maximum: float | None = None
) -> float:
    """A number from the environment, 0 or more (and at most ``maximum``); errors name it."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    span = "a number" if maximum is None else f"a number between 0 and {maximum:g}"
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {span}, got {raw!r}") from None
    if value < 0 or (maximum is not None and value > maximum) or value != value:
        raise ValueError(f"{name} must be {span}, got {raw!r}")
    return value


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {environ[name]!r}")


def level_from_name(name: str, variable: str = "ERRORKIT_LOG_LEVEL") -> int:
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"{variable} must be one of {sorted(LEVELS)}, got {name!r}") from None


@dataclass
class Settings:
    """What the boundary reads on every call; mutable so ``setup()`` can retune it."""

    slow_ms: float = 500.0
    log_level: int = logging.INFO
    events_per_minute: int = 10
    log_lines_per_minute: int = 60
    repr_limit: int = 512
    # Prometheus counters on the failure path and boundary observers' metrics.
    metrics: bool = True
    # Derived from log_level; a plain attribute because the success path reads it.
    debug: bool = False

    def __post_init__(self) -> None:
        self.set_log_level(self.log_level)

    def set_log_level(self, level: int) -> None:
        self.log_level = level
        self.debug = level <= logging.DEBUG

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            slow_ms=env_float(env, "ERRORKIT_SLOW_MS", 500.0),
            log_level=level_from_name(env.get("ERRORKIT_LOG_LEVEL", "") or "info"),
            events_per_minute=_int(env, "ERRORKIT_EVENTS_PER_MINUTE", 10),
            log_lines_per_minute=_int(env, "ERRORKIT_LOG_LINES_PER_MINUTE", 60),
            repr_limit=_int(env, "ERRORKIT_REPR_LIMIT", 512) or 512,
            metrics=env_flag(env, "ERRORKIT_METRICS", True),
        )


def _initial() -> Settings:
    try:
        return Settings.from_env()
    except ValueError:
        # A bad variable must not make `import errorkit` fail; setup() reports it.
        return Settings()


settings = _initial()
