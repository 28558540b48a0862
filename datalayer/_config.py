"""Settings read from the environment, checked once at start."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "MULTI_HOST_TARGET",
    "Settings",
    "check_conninfo",
    "conninfo_from_env",
    "default_data_dir",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

# Variables that point at a server; any of them set means "not embedded".
_CONNECTION_VARIABLES = (
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
)


def _env(name: str, kind: str, **extra: Any) -> Any:
    return field(metadata={"env": name, "kind": kind, **extra})


@dataclass(frozen=True, slots=True)
class Settings:
    """Pool and connection settings of one service.

    Build it with ``Settings.from_env()``; direct construction is checked the same
    way, and a bad value raises ``ValueError`` naming the environment variable.
    """

    max_connections: int = _env("POSTGRES_MAX_CONNECTIONS", "int", minimum=1, default=3)
    min_connections: int = _env("POSTGRES_MIN_CONNECTIONS", "int", minimum=0, default=0)
    connect_timeout: float = _env("POSTGRES_CONNECT_TIMEOUT", "seconds", default=10.0)
    pool_timeout: float = _env("POSTGRES_POOL_TIMEOUT", "seconds", default=10.0)
    statement_timeout: float = _env("POSTGRES_STATEMENT_TIMEOUT", "seconds", default=60.0)
    max_lifetime: float = _env("POSTGRES_MAX_LIFETIME", "seconds", default=3600.0)
    max_idle: float = _env("POSTGRES_MAX_IDLE", "seconds", default=600.0)
    pool_usage_warn: float = _env("POSTGRES_POOL_USAGE_WARN", "fraction", default=0.8)
    expected_services: int = _env("POSTGRES_EXPECTED_SERVICES", "int", minimum=1, default=7)
    pgbouncer: bool = _env("POSTGRES_PGBOUNCER", "bool", default=False)
    service_name: str = _env("SERVICE_NAME", "name", default="datalayer")
    # An idle connection is only fully checked (one round trip) past this many seconds.
    check_idle_after: float = _env("POSTGRES_CHECK_IDLE_AFTER", "seconds", default=30.0)

    def __init__(self, **values: Any) -> None:
        known = {f.name: f for f in fields(self)}
        unknown = set(values) - set(known)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name, f in known.items():
            value = values.get(name, f.metadata["default"])
            object.__setattr__(self, name, _check(f.metadata, value))
        if self.min_connections > self.max_connections:
            raise ValueError(
                f"POSTGRES_MIN_CONNECTIONS={self.min_connections} is above "
                f"POSTGRES_MAX_CONNECTIONS={self.max_connections}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``); unset ones keep
        their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _parse(f.metadata, raw)
        return cls(**values)


def _parse(meta: Mapping[str, Any], raw: str) -> Any:
    name, kind = meta["env"], meta["kind"]
    text = raw.strip()
    try:
        if kind == "int":
            return int(text)
        if kind in ("seconds", "fraction"):
            return float(text)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name}={raw!r} is not a boolean (true/false)")
    return text


def _check(meta: Mapping[str, Any], value: Any) -> Any:
    name, kind = meta["env"], meta["kind"]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}={value!r} is not an integer")
        if value < meta["minimum"]:
            raise ValueError(f"{name}={value!r} must be at least {meta['minimum']}")
        return value
    if kind in ("seconds", "fraction"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}={value!r} is not a number")
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name}={value!r} must be a positive number")
        if kind == "fraction" and number > 1:
            raise ValueError(f"{name}={value!r} must be a fraction in (0, 1]")
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} is not a boolean")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}={value!r} must be a non-empty name")
    return value.strip()


#: What a connection string naming several hosts asks of the one it connects to,
#: unless it says otherwise: a primary (a server that accepts writes).
MULTI_HOST_TARGET = "read-write"


def conninfo_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``DATABASE_URL``, else a conninfo from ``POSTGRES_HOST/PORT/DB/USER/PASSWORD``.

    None when neither is set: the caller starts the embedded server. Several hosts
    (``host=a,b port=5432,5433``, ``postgresql://u@a:5432,b:5433/db``, or
    ``POSTGRES_HOST=a,b`` with ``POSTGRES_PORT=5432,5433``) are tried in order, and
    without a ``target_session_attrs`` of their own (nor ``PGTARGETSESSIONATTRS``)
    only a server that accepts writes is taken (``read-write``): after a failover
    the new connections find the promoted standby. A bad value raises
    ``ValueError`` naming the variable, never repeating a password.
    """
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if url:
        return check_conninfo(url, "DATABASE_URL", env)
    if not any(env.get(name) for name in _CONNECTION_VARIABLES):
        return None
    raw_hosts = env.get("POSTGRES_HOST") or "localhost"
    hosts = [h.strip() for h in raw_hosts.split(",")]
    if not all(hosts):
        raise ValueError(f"POSTGRES_HOST={raw_hosts!r} has an empty host name")
    raw_ports = env.get("POSTGRES_PORT") or "5432"
    ports = [p.strip() for p in raw_ports.split(",")]
    for port in ports:
        if not _is_port(port):
            raise ValueError(f"POSTGRES_PORT={raw_ports!r}: {port!r} is not a port number")
    _check_counts(
        len(hosts), len(ports), f"POSTGRES_PORT={raw_ports!r} for POSTGRES_HOST={raw_hosts!r}"
    )
    params = {
        "host": ",".join(hosts),
        "port": ",".join(ports),
        "dbname": env.get("POSTGRES_DB") or "postgres",
        "user": env.get("POSTGRES_USER") or "postgres",
        "password": env.get("POSTGRES_PASSWORD") or None,
    }
    if len(hosts) > 1 and not env.get("PGTARGETSESSIONATTRS"):
        params["target_session_attrs"] = MULTI_HOST_TARGET
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def check_conninfo(
    conninfo: str, variable: str = "conninfo", environ: Mapping[str, str] | None = None
) -> str:
    """``conninfo`` (a libpq key/value string or a ``postgresql://`` URL), checked.

    With several hosts, their ports must be one for all or one each, and
    ``target_session_attrs=read-write`` is added when neither the string nor
    ``PGTARGETSESSIONATTRS`` sets it. One host: returned unchanged. A string libpq
    cannot parse raises ``ValueError`` naming ``variable`` without quoting it (its
    text may hold a password).
    """
    env = os.environ if environ is None else environ
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise ValueError(
            f"{variable} is not a valid libpq connection string or postgresql:// URL "
            "(not repeated here: it may hold a password)"
        ) from None
    hosts = _split(params.get("host"))
    addresses = _split(params.get("hostaddr"))
    ports = _split(params.get("port"))
    if hosts and addresses and len(hosts) != len(addresses):
        raise ValueError(
            f"{variable} names {len(hosts)} hosts but {len(addresses)} hostaddr values"
        )
    count = max(len(hosts), len(addresses))
    for port in ports:
        if port and not _is_port(port):
            raise ValueError(f"{variable}: port {port!r} is not a port number")
    if count <= 1:
        return conninfo
    _check_counts(count, len(ports), variable)
    if params.get("target_session_attrs") or env.get("PGTARGETSESSIONATTRS"):
        return conninfo
    return make_conninfo(conninfo, target_session_attrs=MULTI_HOST_TARGET)


def _split(value: object) -> list[str]:
    return [part.strip() for part in str(value).split(",")] if value else []


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < int(text) < 65536


def _check_counts(hosts: int, ports: int, where: str) -> None:
    # libpq pairs hosts and ports by position; one port serves every host.
    if ports not in (0, 1, hosts):
        raise ValueError(
            f"{where}: {ports} ports for {hosts} hosts; "
            "give one port for all of them, or one port per host"
        )


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded server keeps its data: ``DATALAYER_DATA_DIR`` or ~/.local/share."""
    env = os.environ if environ is None else environ
    folder = env.get("DATALAYER_DATA_DIR")
    if folder:
        return Path(folder).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "datalayer" / "pgdata"
