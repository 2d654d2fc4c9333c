"""A minimal, fast HTTP PUT sink on loopback, so the benchmark measures the clients.

Each PUT must carry ``Content-Length`` (411 otherwise) and must not be chunked
(501), like a presigned S3 PUT. The body is read in 1 MiB ``readinto`` calls
into one reusable buffer and thrown away; the answer is 200 with an ``ETag``.
Every request is recorded (path, announced length, bytes received, status) so
the benchmark can check that each upload delivered exactly the file's bytes.

Usage::

    with Sink() as sink:
        url = sink.url("client-1")
        ...  # PUT to url
        record = sink.record("/client-1")
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final, Self, cast
from urllib.parse import urlsplit

__all__ = ["Received", "Sink"]

CHUNK_BYTES: Final = 1024 * 1024
"""Bytes read from the socket per ``readinto``."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the sink saw it."""

    path: str
    content_length: int | None
    received: int
    status: int


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _SinkHandler)
        self.lock = threading.Lock()
        self.records: list[Received] = []

    def add(self, record: Received) -> None:
        with self.lock:
            self.records.append(record)


class _SinkHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that ``Expect: 100-continue`` (curl sends it for bodies > 1 MiB) is
    # answered at once instead of curl waiting a second for a 100 that never comes.
    protocol_version = "HTTP/1.1"
    server_version = "bench-sink"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray(CHUNK_BYTES)

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing (URLs may carry signatures; logging would also cost time)."""

    def do_PUT(self) -> None:
        """Read exactly Content-Length bytes, discard them, answer 200 with an ETag."""
        sink = cast(_SinkServer, self.server)
        path = urlsplit(self.path).path
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            sink.add(Received(path=path, content_length=None, received=0, status=501))
            self._answer(501, close=True)
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            sink.add(Received(path=path, content_length=None, received=0, status=411))
            self._answer(411, close=True)
            return
        raw_length = raw_length.strip()
        if not (raw_length.isascii() and raw_length.isdigit()):
            sink.add(Received(path=path, content_length=None, received=0, status=400))
            self._answer(400, close=True)
            return
        length = int(raw_length)
        view = memoryview(self._buffer)
        remaining = length
        while remaining > 0:
            got = self.rfile.readinto(view[: min(CHUNK_BYTES, remaining)])
            if not got:
                break
            remaining -= got
        received = length - remaining
        status = 200 if remaining == 0 else 400
        with sink.lock:
            number = len(sink.records) + 1
            sink.records.append(
                Received(path=path, content_length=length, received=received, status=status)
            )
        self._answer(status, close=status != 200, etag=f'"sink-{number}-{received}"')

    def do_GET(self) -> None:
        """Not an upload: 405."""
        self._answer(405, close=True)

    do_POST = do_GET

    def _answer(self, status: int, *, close: bool, etag: str | None = None) -> None:
        self.send_response(status)
        if etag is not None:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", "0")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()


class Sink:
    """The sink, served by a daemon thread on ``host`` (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _SinkServer((host, port))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str) -> str:
        """An upload URL whose path is ``/<name>``, with a fake signature query like S3's."""
        return f"{self.origin}/{name}?X-Amz-Signature=not-checked"

    def records(self) -> tuple[Received, ...]:
        """Every request so far, in order."""
        with self._server.lock:
            return tuple(self._server.records)

    def record(self, path: str) -> Received:
        """The one request made to ``path`` (``LookupError`` if none or several)."""
        found = [r for r in self.records() if r.path == path]
        if len(found) != 1:
            raise LookupError(f"expected one request to {path}, the sink saw {len(found)}")
        return found[0]

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
