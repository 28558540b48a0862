"""Unreachable Sentry endpoints: a closed port and a black hole.

The black hole accepts TCP connections on 127.0.0.1 and never answers (it
reads and discards), so a client waits for its own timeout. Its lifetime is
bounded: after ``lifetime`` seconds (or ``close()``) every socket is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dsn_for(port: int) -> str:
    return f"http://publickey@127.0.0.1:{port}/1"


def closed_port_dsn() -> str:
    return dsn_for(closed_port())


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts and never answers."""

    def __init__(self, lifetime: float = 60.0) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self.bytes_received = 0
        self._deadline = time.monotonic() + lifetime
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sentry-black-hole", daemon=True)
        self._thread.start()

    @property
    def dsn(self) -> str:
        return dsn_for(self.port)

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                self._drain()
                continue
            except OSError:
                break
            conn.setblocking(False)
            self._held.append(conn)
            self.accepted += 1
            self._drain()
        self._close_all()

    def _drain(self) -> None:
        for conn in self._held:
            try:
                data = conn.recv(65536)
            except (BlockingIOError, OSError):
                continue
            self.bytes_received += len(data)

    def _close_all(self) -> None:
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._held.clear()
        with contextlib.suppress(OSError):
            self._listener.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
