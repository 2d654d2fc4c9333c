"""What the loopback test servers (``bench_sink.py``, ``bench_source.py``) share.

- ``RecordingServer``: a ``ThreadingHTTPServer`` (daemon threads, address reuse)
  with a lock and the list of what it answered.
- ``QuietHandler``: HTTP/1.1, ``TCP_NODELAY``, no logging, no version banner.
- ``Serving``: runs a ``RecordingServer`` on a daemon thread; ``origin``,
  ``records()``, ``start``/``stop`` and use as a context manager.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Generic, Self, TypeVar

__all__ = ["QuietHandler", "RecordingServer", "Serving"]

R = TypeVar("R")


class RecordingServer(ThreadingHTTPServer, Generic[R]):
    """A threading HTTP server that keeps a record (``R``) of each request it answered."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.lock = threading.Lock()
        self.records: list[R] = []

    def add(self, record: R) -> None:
        with self.lock:
            self.records.append(record)


class QuietHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open and answers ``Expect: 100-continue`` at once.
    protocol_version = "HTTP/1.1"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing (URLs may carry signatures; logging would also cost time)."""


class Serving(Generic[R]):
    """``server``, served by a daemon thread."""

    def __init__(self, server: RecordingServer[R]) -> None:
        self._recording = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._recording.server_address[:2]
        return f"http://{host!s}:{port}"

    def records(self) -> tuple[R, ...]:
        """Every request recorded so far, in order."""
        with self._recording.lock:
            return tuple(self._recording.records)

    def start(self) -> Self:
        """Serve; returns ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._recording.shutdown()
        self._recording.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
