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
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast
from urllib.parse import quote, unquote, urlsplit

from bench_server import QuietHandler, RecordingServer, Serving

__all__ = ["Served", "Source"]

CONTENT_TYPE: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Served:
    """One GET as the source answered it."""

    path: str
    status: int
    sent: int


class _SourceServer(RecordingServer[Served]):
    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _SourceHandler)
        self.files: dict[str, Path] = {}


class _SourceHandler(QuietHandler):
    server_version = "bench-source"

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


class Source(Serving[Served]):
    """The source, served by a daemon thread on ``host`` (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _SourceServer((host, port))
        super().__init__(self._server)

    def add(self, name: str, path: Path) -> str:
        """Serve ``path`` as ``/<name>``; its URL, with a fake signature query like S3's."""
        with self._server.lock:
            self._server.files[name] = path
        return f"{self.origin}/{quote(name)}?X-Amz-Signature=not-checked"
