"""The one error type of runway_client, and its kinds.

Every step returns ``Failure(RunwayError)`` for an expected failure; the
``RunwayClient`` shell raises that same object. One class per meaning, so
callers can ``except`` exactly what they handle::

    RunwayError                    base: .step, .job_uid, .status, .exit_code
    ├── InputError                 bad local input, found before any job is created
    ├── InputChangedError          an input file changed after its job was created
    ├── AuthenticationError        the token endpoint refused the credentials, or 401
    ├── PermissionDeniedError      403 from the API (scopes, partner)
    ├── RequestRejectedError       400 from the API: .server_message (str or tuple of str)
    ├── NotFoundError              404 from the API
    ├── ServerError                5xx other than 503
    ├── ServiceUnavailableError    503 ("External API is disabled.")
    ├── RateLimitError             429: the service is rate-limiting (Retry-After kept)
    ├── StorageError               S3 refused an upload: .code ("SignatureDoesNotMatch", ...)
    │   ├── UploadExpiredError     the job's upload URLs expired: it cannot be completed
    │   └── IntegrityError         S3's ETag is not the MD5 of the file (verify_etag)
    ├── NetworkError               connection failed, reset, or timed out
    │   ├── RequestTimeoutError    no connection or answer within the timeout
    │   │   └── DeadlineExceededError  an operation's total deadline passed (all attempts)
    │   └── OutcomeUnknownError    POST /jobs may have reached Runway: check the UI
    ├── ProtocolError              a response that does not match CONTRACT.md
    ├── OutputsNotReadyError       waited, and the run has produced no output set yet
    └── CancelledError             the caller's ``cancel`` event was set (Ctrl-C, SIGTERM)

``error_for_status`` maps an HTTP status to its class, in one place.

Errors are built complete and never changed: ``error.replace(...)`` returns a
copy with some fields changed (a job uid, a message, ``pending``). When the
server gave request ids (the API's, S3's ``x-amz-request-id`` and
``x-amz-id-2``), they are kept in ``request_id`` / ``extended_request_id`` and
shown in ``str(error)``: quote them to Runway or AWS support.

No message built here ever holds a client secret, an access token, or a
presigned URL's signature: callers pass only redacted text (see
``runway_client._redaction``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Final, Literal

if TYPE_CHECKING:  # typing only: errors stays below models at run time
    from runway_client._models import PendingJob

Step = Literal[
    "input",
    "authorize",
    "create_job",
    "upload",
    "start",
    "verify_token",
    "list_output_sets",
    "get_download_links",
    "download",
    "wait_for_outputs",
]

__all__ = [
    "AuthenticationError",
    "CancelledError",
    "DeadlineExceededError",
    "InputChangedError",
    "InputError",
    "IntegrityError",
    "NetworkError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutputsNotReadyError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RequestRejectedError",
    "RequestTimeoutError",
    "RunwayError",
    "ServerError",
    "ServiceUnavailableError",
    "Step",
    "StorageError",
    "UploadExpiredError",
    "error_for_status",
]


JOB_ALREADY_STARTED: Final = "job_already_started"
"""``code`` of the 400 a start gets when the job is started already (CONTRACT.md, start)."""
FILES_MISSING: Final = "files_missing"
"""``code`` of the 400 a start gets before every file is uploaded (CONTRACT.md, start)."""


class RunwayError(Exception):
    """Base of every error runway_client returns or raises.

    Attributes:
        message: what went wrong and, where we know it, what to do (no secrets).
        step: the pipeline step that failed (``"create_job"``, ``"upload"`` ...).
        job_uid: the Runway job uid when a job exists, else ``None``.
        status: the HTTP status of the answer that failed, else ``None``.
        server_message: the server's own message (a string, or a tuple of
            strings for a 400 that lists every failing field), else ``None``.
        code: a machine-readable code: the S3 error code, the OAuth2 ``error``,
            or how a start was refused (``"job_already_started"``, ``"files_missing"``).
        retry_after: seconds the server asked to wait (``Retry-After``), else ``None``.
        retry_at: when the server said to come back (a ``Retry-After`` date), as
            seconds since the epoch, else ``None``.
        request_sent: ``False`` only when the request certainly never reached the
            server (connection refused, DNS, connect timeout): safe to send again.
        request_id: the server's id for the failed request (S3's
            ``x-amz-request-id``, the API's request id header), else ``None``.
        extended_request_id: S3's ``x-amz-id-2`` (AWS support asks for both), else ``None``.
        pending: when a job was created but not started, what is needed to finish
            it (a ``PendingJob``, for ``resume``), else ``None``.
        problems: for an ``InputError``, every problem found, one by one.
        kind: a short stable name of the class (``"input"``, ``"rate_limited"`` ...),
            for journals and progress events (class attribute).
        exit_code: the ``runway-client`` exit status for this kind (class attribute).

    >>> str(RequestRejectedError("Invalid tenant.", step="create_job", status=400))
    'create_job failed (HTTP 400): Invalid tenant.'
    >>> error = RequestRejectedError("Invalid tenant.", step="create_job", status=400)
    >>> error.replace(job_uid="6f1c").job_uid, error.job_uid
    ('6f1c', None)
    """

    kind: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        step: Step,
        job_uid: str | None = None,
        status: int | None = None,
        server_message: str | tuple[str, ...] | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        retry_at: float | None = None,
        request_sent: bool = True,
        request_id: str | None = None,
        extended_request_id: str | None = None,
        pending: PendingJob | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.step: Step = step
        self.job_uid = pending.job.uid if pending is not None else job_uid
        self.status = status
        self.server_message = server_message
        self.code = code
        self.retry_after = retry_after
        self.retry_at = retry_at
        self.request_sent = request_sent
        self.request_id = request_id
        self.extended_request_id = extended_request_id
        self.pending = pending
        self.problems = tuple(problems)

    def __str__(self) -> str:
        where = f"{self.step} failed"
        if self.status is not None:
            where += f" (HTTP {self.status})"
        text = f"{where}: {self.message}"
        if self.job_uid is not None:
            text += f" [job {self.job_uid}]"
        ids = [
            f"{label} {value}"
            for label, value in (
                ("request id", self.request_id),
                ("x-amz-id-2", self.extended_request_id),
            )
            if value
        ]
        if ids:
            text += f" [{'; '.join(ids)}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, step={self.step!r}, "
            f"job_uid={self.job_uid!r}, status={self.status!r}, code={self.code!r}, "
            f"request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, object]:
        return {
            "step": self.step,
            "job_uid": self.job_uid,
            "status": self.status,
            "server_message": self.server_message,
            "code": self.code,
            "retry_after": self.retry_after,
            "retry_at": self.retry_at,
            "request_sent": self.request_sent,
            "request_id": self.request_id,
            "extended_request_id": self.extended_request_id,
            "pending": self.pending,
            "problems": self.problems,
        }

    def replace(self, **changes: object) -> RunwayError:
        """A copy of this error with ``changes`` (any constructor argument, ``message``
        included); the error itself is never changed. Giving ``pending`` also sets
        ``job_uid`` to its job's; ``pending=None`` drops it.

        >>> e = NotFoundError("Job not found", step="start", status=404)
        >>> type(e.replace(message="gone")).__name__, e.replace(message="gone").message
        ('NotFoundError', 'gone')
        """
        fields = self._fields()
        message = str(changes.pop("message", self.message))
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"RunwayError.replace() got unknown fields {sorted(unknown)}")
        fields.update(changes)
        return _rebuild(type(self), message, fields)

    def for_job(self, job_uid: str) -> RunwayError:
        """A copy of this error that names ``job_uid`` (self if it already does)."""
        return self if self.job_uid == job_uid else self.replace(job_uid=job_uid)

    def masking(self, *secrets: str) -> RunwayError:
        """A copy with each of ``secrets`` masked in its texts (self if none occurs).

        For a server that echoes the access token in an error message.
        """
        present = [s for s in secrets if s and (s in self.message or s in str(self.server_message))]
        if not present:
            return self

        def mask(text: str) -> str:
            for secret in present:
                text = text.replace(secret, "REDACTED")
            return text

        said = self.server_message
        return self.replace(
            message=mask(self.message),
            server_message=tuple(mask(s) for s in said)
            if isinstance(said, tuple)
            else (mask(said) if said is not None else None),
        )


def _rebuild(cls: type[RunwayError], message: str, fields: dict[str, object]) -> RunwayError:
    return cls(message, **fields)  # type: ignore[arg-type]


class InputError(RunwayError):
    """Bad local input (file, school year, name, URL), found before any request.

    ``problems`` lists every problem found, each naming the input and what to do.
    """

    kind = "input"
    exit_code = 3

    @classmethod
    def of(cls, problems: Iterable[str]) -> InputError:
        """One error that reports every problem at once (message joined by ``"; "``).

        ``problems`` lists them one by one.
        """
        found = tuple(problems)
        return cls("; ".join(found), step="input", problems=found)


class InputChangedError(RunwayError):
    """An input file changed after its job was created (its size while being
    uploaded, or its contents before a resume): the upload is refused, the job is not
    started, and ``job_uid`` names it. Unlike ``InputError`` a job exists: resume it
    with the original file back in place, or load again to make a new job."""

    kind = "input_changed"
    exit_code = 21


class AuthenticationError(RunwayError):
    """The identity provider refused the client credentials, or the API said 401."""

    kind = "authentication"
    exit_code = 4


class PermissionDeniedError(RunwayError):
    """403 from the API: missing scopes, or a partner the token may not act for."""

    kind = "permission"
    exit_code = 5


class RequestRejectedError(RunwayError):
    """400 from the API; ``server_message`` holds the server's message(s) verbatim."""

    kind = "rejected"
    exit_code = 6


class NotFoundError(RunwayError):
    """404 from the API (unknown job, unknown route or partner)."""

    kind = "not_found"
    exit_code = 7


class ServerError(RunwayError):
    """A 5xx answer other than 503, from the API or the token endpoint."""

    kind = "server"
    exit_code = 8


class ServiceUnavailableError(RunwayError):
    """503: the External API is disabled on this instance, or the service is down."""

    kind = "unavailable"
    exit_code = 9


class RateLimitError(RunwayError):
    """429: the API, the identity provider or storage is rate-limiting this client.

    Tried again per the retry policy, honouring ``retry_after`` / ``retry_at``
    (``Retry-After``); raised when the tries are spent. Slow down, or spread loads.
    """

    kind = "rate_limited"
    exit_code = 16


class StorageError(RunwayError):
    """S3 refused an upload; ``code`` is the S3 error code (``SignatureDoesNotMatch`` ...)."""

    kind = "storage"
    exit_code = 10


class UploadExpiredError(StorageError):
    """The job's presigned upload URLs expired (S3's 403 ``AccessDenied`` "Request has
    expired"): they live one hour and Runway cannot issue new ones, so this job can
    never be completed; load again to create a new one (CONTRACT.md)."""

    kind = "upload_expired"
    exit_code = 15


class IntegrityError(StorageError):
    """S3 stored other bytes than the file's: the ``ETag`` of a single PUT (the quoted
    hex MD5 of the object S3 stored) differs from the MD5 of the file as read for the
    upload. Only checked with ``verify_etag``; the message names the file and the job.
    Nothing is retried: load the file again (a new job)."""

    kind = "integrity"
    exit_code = 17


class NetworkError(RunwayError):
    """The connection failed, was reset, or the peer closed it mid-request."""

    kind = "network"
    exit_code = 11


class RequestTimeoutError(NetworkError):
    """No connection or no answer within the configured timeout (seconds)."""

    kind = "timeout"


class DeadlineExceededError(RequestTimeoutError):
    """An operation's total deadline passed: its attempts and the waits between them
    took longer than ``RetryPolicy.call_timeout`` seconds (the AWS SDKs' "API call
    timeout", as opposed to the per-attempt read timeout). A silent token endpoint or
    API ends here rather than after attempts x read timeout."""

    kind = "deadline"


class OutcomeUnknownError(NetworkError):
    """A request that creates something may have reached Runway, but no answer
    came back: ``POST /jobs`` has no idempotency key, so it is not sent again.
    Check the Runway UI before loading again."""

    kind = "outcome_unknown"
    exit_code = 14


class ProtocolError(RunwayError):
    """An answer that does not match CONTRACT.md (wrong status, undecodable body)."""

    kind = "protocol"
    exit_code = 12


class OutputsNotReadyError(RunwayError):
    """No output set for the job appeared within the wait: the run may still be
    running, or may have failed (failed runs never produce one; CONTRACT.md,
    "Output sets"). The Runway UI shows the job's status."""

    kind = "not_ready"
    exit_code = 13


class CancelledError(RunwayError):
    """The caller asked the operation to stop (its ``cancel`` event was set: the
    command line sets it on SIGINT or SIGTERM). Nothing new is created after that;
    an upload in flight is ended. When a job exists and is not started, ``pending``
    holds it (resume it later); a job already started is named by ``job_uid``.

    ``runway-client`` exits 130 after SIGINT and 143 after SIGTERM (128 + the
    signal number, the shell's convention); ``exit_code`` is the SIGINT one.
    """

    kind = "cancelled"
    exit_code = 130


_BY_STATUS: dict[int, type[RunwayError]] = {
    400: RequestRejectedError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_for_status(status: int) -> type[RunwayError]:
    """The error class for an HTTP error status from the API (the one status map).

    >>> error_for_status(400).__name__, error_for_status(502).__name__
    ('RequestRejectedError', 'ServerError')
    """
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return RequestRejectedError
    return ProtocolError
