"""The four steps of a load, each ``(...) -> Result[next value, RunwayError]``.

::

    authorize(transport, config, scopes)          -> Token
    create_job(transport, config, token, spec)    -> Job
    upload(transport, job)                        -> UploadedJob
    start(transport, config, token, uploaded)     -> LoadReceipt

A step never raises for an expected failure: it returns ``Failure(RunwayError)``,
and once a job exists the error names its uid (``error.job_uid``). The only
I/O is through ``transport`` (network) and ``files`` (local files); building
and decoding is in ``wire``. ``start`` takes an ``UploadedJob``, so a flow that
skips the upload does not type-check.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial

from returns.result import Failure, Result, Success

from runway_client.config import RunwayConfig
from runway_client.errors import RunwayError
from runway_client.files import open_upload_body
from runway_client.models import (
    Job,
    JobSpec,
    LoadReceipt,
    Token,
    UploadedJob,
    UploadReceipt,
)
from runway_client.transport import HttpResponse, Transport
from runway_client.wire import (
    create_job_request,
    decode_create_job,
    decode_start,
    decode_token,
    decode_upload,
    start_request,
    token_request,
    upload_headers,
)

__all__ = ["authorize", "create_job", "start", "upload", "upload_file"]


def authorize(
    transport: Transport, config: RunwayConfig, scopes: tuple[str, ...]
) -> Result[Token, RunwayError]:
    """Get an access token with the client-credentials grant, for ``scopes``.

    Errors: ``AuthenticationError`` (bad credentials), ``PermissionDeniedError``
    (audience or scopes refused), ``ServiceUnavailableError`` (429/503),
    ``NetworkError``, ``ProtocolError``.
    """
    answer = transport.send(token_request(config, scopes), step="authorize")
    return answer.bind(_decode_token_now(scopes, config))


def _decode_token_now(
    scopes: tuple[str, ...], config: RunwayConfig
) -> partial[Result[Token, RunwayError]]:
    return partial(decode_token, scopes=scopes, now=time.time(), secret=config.client_secret)


def create_job(
    transport: Transport, config: RunwayConfig, token: Token, spec: JobSpec
) -> Result[Job, RunwayError]:
    """``POST /jobs``: Runway answers the job uid and one presigned PUT URL per file.

    Errors: ``RequestRejectedError`` (400, with the server's message or list of
    messages), ``PermissionDeniedError``, ``AuthenticationError``,
    ``ServiceUnavailableError``, ``ServerError``, ``NetworkError``, ``ProtocolError``.
    """
    answer = transport.send(create_job_request(config, token, spec), step="create_job")
    return answer.bind(partial(decode_create_job, spec=spec, now=datetime.now(UTC)))


def upload_file(transport: Transport, job: Job, key: str) -> Result[UploadReceipt, RunwayError]:
    """Stream the file of ``key`` to its presigned URL; the receipt has its bytes and SHA-256.

    Errors (all naming the job): ``StorageError`` with S3's code, ``InputError``
    if the file changed since it was checked, ``NetworkError``.
    """
    source = job.spec.file(key)
    opened = open_upload_body(source)
    if not isinstance(opened, Success):
        return Failure(opened.failure().for_job(job.uid))
    with opened.unwrap() as body:
        answer: Result[HttpResponse, RunwayError] = transport.put(
            job.upload_urls[key], body, headers=upload_headers(), step="upload"
        )
        etag = answer.bind(partial(decode_upload, key=key, file_name=source.name, job_uid=job.uid))
        if not isinstance(etag, Success):
            return Failure(etag.failure().for_job(job.uid))
        digest = body.finish()
        if not isinstance(digest, Success):
            return Failure(digest.failure().for_job(job.uid))
    return Success(
        UploadReceipt(
            key=key,
            path=source.path,
            file_name=source.name,
            bytes=source.size,
            sha256=digest.unwrap(),
            etag=etag.unwrap(),
        )
    )


def upload(transport: Transport, job: Job) -> Result[UploadedJob, RunwayError]:
    """Upload every file of ``job``, in the spec's order; stops at the first failure."""
    receipts: list[UploadReceipt] = []
    for source in job.spec.files:
        outcome = upload_file(transport, job, source.key)
        if not isinstance(outcome, Success):
            return Failure(outcome.failure())
        receipts.append(outcome.unwrap())
    return Success(UploadedJob(job=job, receipts=tuple(receipts)))


def start(
    transport: Transport, config: RunwayConfig, token: Token, uploaded: UploadedJob
) -> Result[LoadReceipt, RunwayError]:
    """``POST /jobs/<uid>/start`` (202): Runway begins the run; the receipt is returned.

    Errors name the job: ``RequestRejectedError`` (a file missing or empty on
    S3, or the job already in progress), ``NotFoundError``, and the API errors
    of ``create_job``.
    """
    job = uploaded.job
    answer = transport.send(start_request(config, token, job.uid), step="start")
    return answer.bind(partial(decode_start, job_uid=job.uid)).map(partial(_receipt, uploaded))


def _receipt(uploaded: UploadedJob, _started: None) -> LoadReceipt:
    job, spec = uploaded.job, uploaded.job.spec
    return LoadReceipt(
        job_uid=job.uid,
        partner=spec.partner,
        tenant=spec.tenant,
        bundle=spec.bundle,
        school_year=spec.school_year.wire,
        files=uploaded.receipts,
        params=dict(spec.params),
        created_at=job.created_at,
        started_at=datetime.now(UTC),
    )
