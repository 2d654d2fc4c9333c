"""The S3-like storage server: presigned PUTs of inputs, presigned GETs of outputs.

PUT (upload) checks, in order (CONTRACT.md "Presigned S3 URLs"; S3's codes and messages):
method not PUT -> 405 ``MethodNotAllowed``; ``Transfer-Encoding: chunked`` -> 501
``NotImplemented``; no ``Content-Length`` -> 411 ``MissingContentLength``; bad or missing
signature, or ``Content-Type`` not the signed ``application/octet-stream`` -> 403
``SignatureDoesNotMatch``; past the URL's expiry -> 403 ``AccessDenied`` "Request has
expired"; over the size limit -> 400 ``EntityTooLarge``; a key no job was given -> 404
``NoSuchUpload``; fewer bytes than announced -> 400 ``IncompleteBody``. Success: 200,
``ETag: "<md5 hex>"``, empty body. Errors are S3's XML ``<Error>`` documents.

Bodies are streamed to disk in 1 MiB chunks, hashed on the way, and renamed into place
only when complete, so a failed PUT never replaces a good object.

GET (download) checks, in order: the key is an upload's -> 405 ``MethodNotAllowed``; bad
signature (a GET signature: no ``Content-Type`` signed) -> 403 ``SignatureDoesNotMatch``;
past the link's exact deadline -> 403 ``AccessDenied`` "Request has expired"; no such
output -> 404 ``NoSuchKey``. Success: ``downloads.py``.

Injected faults (``faults.py``; routes ``upload`` = PUT, ``download`` = GET): ``status``,
``slow_down`` and ``expire`` answer at once, the upload's body drained and not stored;
``reset_mid_body`` cuts an upload after about half its body (nothing stored) or a
download after its headers and about half its body; ``stall`` and ``reset_before_answer``
act after the request was handled in full (an upload *is* stored).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from runway_client.sandbox.downloads import download_response
from runway_client.sandbox.faults import AbortConnection, Fault, FaultPlan, after_handling
from runway_client.sandbox.jobs import JobStore
from runway_client.sandbox.output_sets import OutputSetStore
from runway_client.sandbox.presign import Presigner

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

CHUNK_SIZE = 1024 * 1024
#: Error answers first read and discard a body up to this size, so the client sees the
#: status rather than a connection reset.
DRAIN_LIMIT = 64 * 1024 * 1024

_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_-]+")
_ROUTE_OF_METHOD = {"PUT": "upload", "GET": "download"}
#: S3's code and message for the statuses an injected ``status`` fault may answer.
_FAULT_ERRORS = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service is unable to handle request."),
}
SLOW_DOWN = ("SlowDown", "Please reduce your request rate.")
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


def object_path(directory: Path, uid: str, file_key: str) -> Path:
    """Where the object uploaded for ``uid``'s ``file_key`` is kept under ``directory``.

    >>> object_path(Path("/s"), "u", "INPUT_FILE").as_posix()
    '/s/u/INPUT_FILE'
    """
    name = file_key
    if not _SAFE_COMPONENT.fullmatch(file_key):
        name = "key-" + hashlib.sha256(file_key.encode("utf-8")).hexdigest()[:32]
    return directory / uid / name


def error_response(status: int, code: str, message: str) -> Response:
    """An S3 error: ``status`` with an XML ``<Error>`` naming ``code`` and ``message``."""
    request_id = secrets.token_hex(8).upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(
        body,
        status=status,
        content_type="application/xml",
        headers={"x-amz-request-id": request_id},
    )


def _raw_target(environ: WSGIEnvironment) -> str:
    """The request target exactly as sent (path + "?" + query), not re-encoded."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if not raw.startswith("/"):  # absolute-form: drop scheme and authority
            parts = urlsplit(raw)
            raw = parts.path + ("?" + parts.query if parts.query else "")
        return raw
    path = quote(str(environ.get("PATH_INFO", "")).encode("latin-1"), safe="/-_.~")
    query = str(environ.get("QUERY_STRING", ""))
    return f"{path}?{query}" if query else path


def _content_length(environ: WSGIEnvironment) -> int | str | None:
    """The announced length; ``None`` when absent; ``"bad"`` when not a decimal integer."""
    raw = str(environ.get("CONTENT_LENGTH", "")).strip()
    if not raw:
        return None
    return int(raw) if raw.isascii() and raw.isdigit() else "bad"


def fault_error(status: int) -> tuple[str, str]:
    """S3's code and message for an injected ``status`` fault.

    >>> fault_error(503), fault_error(502)[0], fault_error(418)[0]
    (('ServiceUnavailable', 'Service is unable to handle request.'), 'InternalError', 'InvalidRequest')
    """
    known = _FAULT_ERRORS.get(status)
    if known is not None:
        return known
    if status >= 500:
        return "InternalError", "We encountered an internal error. Please try again."
    return "InvalidRequest", "Invalid Request"


def _drain(stream: IO[bytes], length: int | None) -> None:
    """Read and discard up to ``length`` bytes (or, when ``None``, to the end), capped."""
    remaining = DRAIN_LIMIT if length is None else length
    if remaining > DRAIN_LIMIT:
        return
    while remaining > 0:
        chunk = stream.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            return
        remaining -= len(chunk)


def _is_chunked(environ: WSGIEnvironment) -> bool:
    return "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()


def _drain_request(environ: WSGIEnvironment, stream: IO[bytes], length: int | str | None) -> None:
    """Discard the request's body before an error answer (when its end can be known)."""
    if _is_chunked(environ):
        _drain(stream, None)
    elif isinstance(length, int):
        _drain(stream, length)


@dataclass(frozen=True, slots=True)
class _Upload:
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One PUT as the storage saw it: ``began``/``ended`` are ``time.monotonic()``
    seconds (its body's first read to its last), ``content_length`` the header, and
    ``stored`` whether the object was written."""

    object_key: str
    content_length: int
    began: float
    ended: float
    stored: bool


class UploadPace:
    """Per-connection upload throttling (thread-safe), a stand-in for S3's per-stream
    limit: ``bytes_per_second`` ``None`` reads as fast as the client sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._records: list[UploadRecord] = []

    def set(self, bytes_per_second: float | None) -> None:
        """Throttle every upload body from now on to ``bytes_per_second`` (``None``: off)."""
        if bytes_per_second is not None and not bytes_per_second > 0:
            raise ValueError("bytes_per_second must be above 0, or None")
        with self._lock:
            self._rate = bytes_per_second

    @property
    def rate(self) -> float | None:
        """The current throttle, bytes per second (``None``: off)."""
        with self._lock:
            return self._rate

    def record(self, upload: UploadRecord) -> None:
        """Keep ``upload`` (see ``records``)."""
        with self._lock:
            self._records.append(upload)

    def records(self) -> tuple[UploadRecord, ...]:
        """Every PUT received with a body, in the order they ended."""
        with self._lock:
            return tuple(self._records)


def _receive(
    stream: IO[bytes], length: int, temporary: IO[bytes], pace: UploadPace | None = None
) -> _Upload | None:
    """Copy exactly ``length`` bytes into ``temporary``; ``None`` if the body ends early.

    With ``pace`` throttled, the body is read no faster than its rate (in blocks of
    at most a tenth of a second's worth), so the client's socket fills and waits."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    remaining = length
    began = time.monotonic()
    rate = None if pace is None else pace.rate
    block = CHUNK_SIZE if rate is None else max(1024, min(CHUNK_SIZE, int(rate / 10)))
    while remaining > 0:
        chunk = stream.read(min(block, remaining))
        if not chunk:
            return None
        md5.update(chunk)
        sha256.update(chunk)
        temporary.write(chunk)
        remaining -= len(chunk)
        if rate is not None:
            ahead = (length - remaining) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    return _Upload(size=length, md5=md5.hexdigest(), sha256=sha256.hexdigest())


class StorageApp:
    """The WSGI app of the storage server.

    ``directory``: where objects are written; ``max_object_size``: bytes per PUT (S3: 5 GiB);
    ``url_lifetime``: seconds a presigned URL lives after its job is created (enforced to
    the sub-second, beyond the whole seconds of ``X-Amz-Expires``); ``outputs``: the
    output objects served to GETs (and their links' exact deadlines); ``faults``: injected
    faults; ``now``: the clock.
    """

    def __init__(
        self,
        *,
        presigner: Presigner,
        jobs: JobStore,
        directory: Path,
        max_object_size: int,
        url_lifetime: float,
        outputs: OutputSetStore | None = None,
        faults: FaultPlan | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pace: UploadPace | None = None,
    ) -> None:
        self._presigner = presigner
        self._jobs = jobs
        self._directory = directory
        self._max_object_size = max_object_size
        self._url_lifetime = timedelta(seconds=url_lifetime)
        self._outputs = OutputSetStore() if outputs is None else outputs
        self._faults = FaultPlan() if faults is None else faults
        self._now = now
        self._pace = UploadPace() if pace is None else pace

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (WSGI); ``AbortConnection`` when a fault resets it."""
        stream = cast(IO[bytes], environ["wsgi.input"])
        length = _content_length(environ)
        method = str(environ.get("REQUEST_METHOD", ""))
        route = _ROUTE_OF_METHOD.get(method)
        fault = None if route is None else self._faults.take(route)
        response = self._answer_fault(fault, route, environ, stream, length)
        if response is None:
            if method == "GET":
                response = self._download(environ, fault)
            else:
                response = self._handle(environ, stream, length)
            after_handling(fault)
        return response(environ, start_response)

    def _answer_fault(
        self,
        fault: Fault | None,
        route: str | None,
        environ: WSGIEnvironment,
        stream: IO[bytes],
        length: int | str | None,
    ) -> Response | None:
        """The answer of a fault that replaces the request's handling, else ``None``."""
        if fault is None:
            return None
        if fault.kind == "reset_mid_body" and route == "upload":
            half = length // 2 if isinstance(length, int) else CHUNK_SIZE
            while half > 0 and (chunk := stream.read(min(CHUNK_SIZE, half))):
                half -= len(chunk)
            raise AbortConnection("connection reset mid-body (injected fault)")
        if fault.kind == "status":
            assert fault.status is not None
            status, (code, message) = fault.status, fault_error(fault.status)
        elif fault.kind == "slow_down":
            status, (code, message) = 503, SLOW_DOWN
        elif fault.kind == "expire":
            status, code, message = 403, "AccessDenied", "Request has expired"
        else:
            return None
        _drain_request(environ, stream, length)
        response = error_response(status, code, message)
        response.headers.extend(fault.retry_after_headers())
        return response

    def _download(self, environ: WSGIEnvironment, fault: Fault | None) -> Response:
        """A presigned GET of an output object (checks in the module's docstring)."""
        target = _raw_target(environ)
        object_key = self._presigner.object_key(target)
        if object_key is not None and self._jobs.locate(object_key) is not None:
            return error_response(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
        signature_ok, deadline = self._presigner.check(
            target, None, environ.get("HTTP_HOST"), method="GET"
        )
        if not signature_ok or deadline is None:
            return error_response(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
        signature = self._presigner.signature_of(target)
        exact = None if signature is None else self._outputs.link_deadline(signature)
        if exact is not None:
            deadline = min(deadline, exact)
        if self._now() > deadline:
            return error_response(403, "AccessDenied", "Request has expired")
        stored = None if object_key is None else self._outputs.locate(object_key)
        if stored is None or not stored.path.is_file():
            return error_response(404, "NoSuchKey", "The specified key does not exist.")
        cut = fault is not None and fault.kind == "reset_mid_body"
        return download_response(stored, cut_mid_body=cut)

    def _handle(
        self, environ: WSGIEnvironment, stream: IO[bytes], length: int | str | None
    ) -> Response:
        chunked = _is_chunked(environ)

        def fail(status: int, code: str, message: str) -> Response:
            _drain_request(environ, stream, length)
            return error_response(status, code, message)

        if environ.get("REQUEST_METHOD") != "PUT":
            return fail(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
        if chunked:
            return fail(
                501,
                "NotImplemented",
                "A header you provided implies functionality that is not implemented",
            )
        if length is None:
            return fail(
                411, "MissingContentLength", "You must provide the Content-Length HTTP header."
            )
        if isinstance(length, str):
            return fail(400, "InvalidArgument", "Content-Length must be a non-negative integer.")
        target = _raw_target(environ)
        signature_ok, url_expiry = self._presigner.check(
            target, environ.get("CONTENT_TYPE"), environ.get("HTTP_HOST")
        )
        if not signature_ok or url_expiry is None:
            return fail(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
        object_key = self._presigner.object_key(target)
        located = None if object_key is None else self._jobs.locate(object_key)
        deadline = url_expiry
        if located is not None:
            deadline = min(deadline, located[0].created_at + self._url_lifetime)
        if self._now() > deadline:
            return fail(403, "AccessDenied", "Request has expired")
        if length > self._max_object_size:
            return fail(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        if located is None:
            return fail(404, "NoSuchUpload", "The specified upload does not exist.")
        job, file_key = located
        began = time.monotonic()
        response = self._store(stream, length, job.uid, file_key)
        self._pace.record(
            UploadRecord(
                object_key=object_key or "",
                content_length=length,
                began=began,
                ended=time.monotonic(),
                stored=response.status_code == 200,
            )
        )
        return response

    def _store(self, stream: IO[bytes], length: int, uid: str, file_key: str) -> Response:
        final = object_path(self._directory, uid, file_key)
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary_name = tempfile.mkstemp(
            dir=final.parent, prefix=".upload-", suffix=".part"
        )
        temporary = Path(temporary_name)
        try:
            with os.fdopen(handle, "wb") as temporary_file:
                upload = _receive(stream, length, temporary_file, self._pace)
            if upload is None:
                return error_response(
                    400,
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length "
                    "HTTP header.",
                )
            self._jobs.record_upload(
                uid, file_key, upload.size, upload.sha256, lambda: os.replace(temporary, final)
            )
        finally:
            temporary.unlink(missing_ok=True)
        return Response(b"", status=200, headers={"ETag": f'"{upload.md5}"'})
