"""The answer to a presigned GET of an output object (CONTRACT.md "Output sets").

200 with ``Content-Type`` (``application/x-ndjson`` for ``.jsonl``, else
``application/octet-stream``), the exact ``Content-Length``, the ``ETag`` (quoted MD5),
``Last-Modified`` and, for objects stored compressed, ``Content-Encoding: gzip`` (the
length and ETag are the compressed bytes', as for an S3 object uploaded with that
metadata: a client must save the bytes as they come). The body is streamed from disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from werkzeug.http import http_date
from werkzeug.wrappers import Response

from runway_client.sandbox.faults import AbortConnection
from runway_client.sandbox.output_sets import OutputObject

CHUNK_SIZE: Final = 64 * 1024
NDJSON: Final = "application/x-ndjson"
OCTET_STREAM: Final = "application/octet-stream"


def content_type_of(name: str) -> str:
    """The ``Content-Type`` an output is served with.

    >>> content_type_of("studentAssessments.jsonl"), content_type_of("run_summary.json")
    ('application/x-ndjson', 'application/octet-stream')
    """
    return NDJSON if name.lower().endswith(".jsonl") else OCTET_STREAM


def stream_file(path: Path, cut_after: int | None = None) -> Iterator[bytes]:
    """``path``'s bytes in chunks; with ``cut_after``, that many bytes then ``AbortConnection``."""
    sent = 0
    with path.open("rb") as stream:
        while cut_after is None or sent < cut_after:
            want = CHUNK_SIZE if cut_after is None else min(CHUNK_SIZE, cut_after - sent)
            chunk = stream.read(want)
            if not chunk:
                break
            sent += len(chunk)
            yield chunk
    if cut_after is not None:
        raise AbortConnection("connection reset mid-body (injected fault)")


def download_response(stored: OutputObject, *, cut_mid_body: bool = False) -> Response:
    """The 200 answer for ``stored``; ``cut_mid_body``: send about half, then reset."""
    headers = {
        "Content-Length": str(stored.size),
        "ETag": f'"{stored.md5}"',
        "Last-Modified": http_date(stored.created_at),
    }
    if stored.content_encoding is not None:
        headers["Content-Encoding"] = stored.content_encoding
    body = stream_file(stored.path, stored.size // 2 if cut_mid_body else None)
    return Response(
        body,
        status=200,
        headers=headers,
        content_type=content_type_of(stored.name),
        direct_passthrough=True,
    )
