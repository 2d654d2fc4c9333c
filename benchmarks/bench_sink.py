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

from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

from bench_server import QuietHandler, RecordingServer, Serving

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


class _SinkServer(RecordingServer[Received]):
    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _SinkHandler)


class _SinkHandler(QuietHandler):
    # HTTP/1.1 (QuietHandler) so that ``Expect: 100-continue`` (curl sends it for bodies
    # > 1 MiB) is answered at once instead of curl waiting a second for a 100 that never comes.
    server_version = "bench-sink"

    def setup(self) -> None:
        super().setup()
        self._buffer = bytearray(CHUNK_BYTES)

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


class Sink(Serving[Received]):
    """The sink, served by a daemon thread on ``host`` (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_SinkServer((host, port)))

    def url(self, name: str) -> str:
        """An upload URL whose path is ``/<name>``, with a fake signature query like S3's."""
        return f"{self.origin}/{name}?X-Amz-Signature=not-checked"

    def record(self, path: str) -> Received:
        """The one request made to ``path`` (``LookupError`` if none or several)."""
        found = [r for r in self.records() if r.path == path]
        if len(found) != 1:
            raise LookupError(f"expected one request to {path}, the sink saw {len(found)}")
        return found[0]
