"""A minimal, fast HTTP GET source on loopback, so the benchmark measures the clients.

It serves files registered by name at ``/<name>`` (any query string, like a
presigned URL's signature, is ignored). A GET is answered over HTTP/1.1 with
``200``, ``Content-Length``, ``Content-Type: application/octet-stream`` and
the body sent by ``socket.sendfile`` (``sendfile(2)``: the kernel copies from
the page cache to the socket, no Python loop), so the server is never the
bottleneck. An unknown name is ``404``; other methods are ``405``. Every GET is
recorded (path, status, bytes sent) so the benchmark can check each download
was served whole.

Usage::

    with Source() as source:
        url = source.add("big.bin", path)
        ...  # GET url
        records = source.records()
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Final, Self, cast
from urllib.parse import quote, unquote, urlsplit

__all__ = ["Served", "Source"]

CONTENT_TYPE: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Served:
    """One GET as the source answered it."""

    path: str
    status: int
    sent: int


class _SourceServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _SourceHandler)
        self.lock = threading.Lock()
        self.files: dict[str, Path] = {}
        self.served: list[Served] = []

    def add(self, record: Served) -> None:
        with self.lock:
            self.served.append(record)


class _SourceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-source"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing (URLs may carry signatures; logging would also cost time)."""

    def do_GET(self) -> None:
        """Send the named file whole with its ``Content-Length``, or 404."""
        source = cast(_SourceServer, self.server)
        path = urlsplit(self.path).path
        with source.lock:
            file = source.files.get(unquote(path.removeprefix("/")))
        if file is None:
            source.add(Served(path=path, status=404, sent=0))
            self._empty(404)
            return
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(size))
            self.end_headers()  # written straight to the socket (wfile is unbuffered)
            sent = 0
            try:
                sent = self.connection.sendfile(handle, 0, size)
            finally:
                if sent != size:
                    self.close_connection = True
                source.add(Served(path=path, status=200, sent=sent))

    def do_PUT(self) -> None:
        """Not a download: 405."""
        self._empty(405)

    do_POST = do_PUT

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()


class Source:
    """The source, served by a daemon thread on ``host`` (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _SourceServer((host, port))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, name: str, path: Path) -> str:
        """Serve ``path`` as ``/<name>``; its URL, with a fake signature query like S3's."""
        with self._server.lock:
            self._server.files[name] = path
        return f"{self.origin}/{quote(name)}?X-Amz-Signature=not-checked"

    def records(self) -> tuple[Served, ...]:
        """Every GET so far, in order."""
        with self._server.lock:
            return tuple(self._server.served)

    def start(self) -> Self:
        """Serve; returns ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
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
