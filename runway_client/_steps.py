"""The four steps of a load, each ``(...) -> Result[next value, RunwayError]``.

::

    authorize(transport, config, scopes)          -> Token
    create_job(transport, config, token, spec)    -> Job
    upload(transport, job)                        -> UploadedJob
    start(transport, config, token, uploaded)     -> LoadReceipt

and the read side (CONTRACT.md, "Output sets")::

    verify_token(transport, config, token)                 -> partner codes
    list_output_sets(transport, config, token, query)      -> OutputSets, oldest first
    get_download_links(transport, config, token, set)      -> DownloadLinks
    download(transport, config, token, set, dest_dir)      -> DownloadReceipts

A step never raises for an expected failure: it returns ``Failure(RunwayError)``,
and once a job exists the error names its uid (``error.job_uid``). The only
I/O is through ``transport`` (network) and ``files`` (local files); building
and decoding is in ``wire``. ``start`` takes an ``UploadedJob``, so a flow that
skips the upload does not type-check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec
from returns.result import Failure, Result, Success

from runway_client._config import RunwayConfig
from runway_client._defaults import DEFAULT_UPLOAD_CONCURRENCY
from runway_client._errors import (
    JOB_ALREADY_STARTED,
    AuthenticationError,
    CancelledError,
    InputError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RunwayError,
    Step,
)
from runway_client._events import FileProgress, FileUploaded, OnProgress
from runway_client._files import (
    DownloadFile,
    HashAhead,
    existing_file,
    fingerprint,
    open_upload_body,
    output_file_name,
    prepare_destination,
    remove_stale_parts,
)
from runway_client._models import (
    DownloadLinks,
    DownloadReceipt,
    InputFile,
    Job,
    JobSpec,
    LoadReceipt,
    OutputSet,
    OutputSetQuery,
    PendingJob,
    Token,
    UploadedJob,
    UploadReceipt,
    is_job_uid,
)
from runway_client._retry import DEFAULT_RETRY, RetryPolicy, cancelled, deadline_for, retrying
from runway_client._transport import HttpRequest, HttpResponse, OnSent, Transport
from runway_client.wire import (
    create_job_request,
    decode_create_job,
    decode_download,
    decode_download_links,
    decode_output_sets,
    decode_start,
    decode_token,
    decode_upload,
    decode_verify_token,
    download_links_request,
    etag_matches,
    is_forbidden,
    output_sets_request,
    start_request,
    token_request,
    upload_headers,
    verify_token_request,
)

_T = TypeVar("_T")

logger = logging.getLogger("runway_client")

__all__ = [
    "TokenSource",
    "authorize",
    "create_job",
    "download",
    "download_file",
    "get_download_links",
    "list_output_sets",
    "pending_after",
    "receipt_for",
    "resumable",
    "start",
    "upload",
    "upload_file",
    "verify_token",
    "with_token",
]


class TokenSource(Protocol):
    """Gives a token for ``scopes``: a ``TokenCache`` (every flow's default), or any
    callable of this shape (a cache shared across processes, say).

    ``rejected`` is a token the API just refused with 401: the source must not
    give that one again (a cache returns a newer one if another caller already
    fetched it, so many threads hitting the same 401 share one new token).
    """

    def __call__(
        self, scopes: tuple[str, ...], /, *, rejected: Token | None = None
    ) -> Result[Token, RunwayError]: ...


def with_token(
    tokens: TokenSource,
    scopes: tuple[str, ...],
    call: Callable[[Token], Result[_T, RunwayError]],
) -> Result[_T, RunwayError]:
    """``call(token)``; if the API answers 401 (the token was revoked or rotated),
    once more with a fresh token (``rejected=`` the refused one, so a cache renews it).
    That request is repeated only then: a 401 means the API did nothing."""
    first = tokens(scopes)
    if not isinstance(first, Success):
        return Failure(first.failure())
    outcome = call(first.unwrap())
    if isinstance(outcome, Failure) and _token_refused(outcome.failure()):
        return tokens(scopes, rejected=first.unwrap()).bind(call)
    return outcome


def _token_refused(error: RunwayError) -> bool:
    """The one test for "the API refused the token" (a 401 from anything but the
    identity provider, whose 401 means bad credentials)."""
    return (
        isinstance(error, AuthenticationError) and error.status == 401 and error.step != "authorize"
    )


def authorize(
    transport: Transport, config: RunwayConfig, scopes: tuple[str, ...]
) -> Result[Token, RunwayError]:
    """Get an access token with the client-credentials grant, for ``scopes``.

    Errors: ``AuthenticationError`` (bad credentials), ``PermissionDeniedError``
    (audience or scopes refused), ``ServiceUnavailableError`` (429/503),
    ``NetworkError``, ``ProtocolError``.

    Example (``transport`` and ``config`` of a ``RunwayClient.from_env()``)::

        token = authorize(transport, config, load_scopes(config.partner_code)).unwrap()
    """

    deadline = deadline_for(config.retry)

    def attempt(_number: int) -> Result[Token, RunwayError]:
        answer = transport.send(token_request(config, scopes), step="authorize", deadline=deadline)
        return answer.bind(_decode_token_now(scopes, config))

    return retrying(attempt, _busy_or_unreachable, config.retry, deadline=deadline)


def _busy_or_unreachable(error: RunwayError) -> bool:
    """Retry for any network failure (not TLS), 429 and 5xx: for requests that may be repeated."""
    if isinstance(error, NetworkError):
        return error.code != "tls"
    return error.status is not None and (error.status == 429 or error.status >= 500)


def _certainly_not_received(error: RunwayError) -> bool:
    """Retry a request that changes something on Runway (``POST /jobs``, start) only
    when Runway cannot have seen it, or said 429."""
    if isinstance(error, NetworkError):
        return not error.request_sent and error.code != "tls"
    return error.status == 429


def _decode_token_now(
    scopes: tuple[str, ...], config: RunwayConfig
) -> partial[Result[Token, RunwayError]]:
    return partial(decode_token, scopes=scopes, now=time.time(), secret=config.client_secret)


def create_job(
    transport: Transport,
    config: RunwayConfig,
    token: Token,
    spec: JobSpec,
    *,
    cancel: threading.Event | None = None,
) -> Result[Job, RunwayError]:
    """``POST /jobs``: Runway answers the job uid and one presigned PUT URL per file.

    Runway has no idempotency key, so this is tried again only when the request
    certainly did not reach it (connection refused, DNS, connect timeout) or it
    answered 429. A request that may have arrived but got no answer (read
    timeout, reset) is ``OutcomeUnknownError``: check the Runway UI before loading
    again. Other errors: ``RequestRejectedError`` (400, with the server's message or
    list of messages), ``PermissionDeniedError``, ``AuthenticationError``,
    ``ServiceUnavailableError``, ``ServerError``, ``NetworkError``, ``ProtocolError``.

    Example (``spec`` from ``prepare_job``; the steps compose with ``returns``)::

        uploaded = flow(create_job(transport, config, token, spec), bind(partial(upload, transport)))
    """

    _expect("create_job", "spec", spec, JobSpec, "prepare_job")
    _expect("create_job", "token", token, Token, "authorize or a TokenCache")
    if cancel is not None and cancel.is_set():  # the last moment before a job would exist
        return Failure(cancelled(None, step="create_job", what="no job was created"))
    deadline = deadline_for(config.retry)

    def attempt(_number: int) -> Result[Job, RunwayError]:
        answer = transport.send(
            create_job_request(config, token, spec), step="create_job", deadline=deadline
        )
        return answer.bind(
            partial(
                decode_create_job, spec=spec, now=datetime.now(UTC), allow_http=config.allow_http
            )
        )

    outcome = retrying(attempt, _certainly_not_received, config.retry, deadline=deadline)
    if isinstance(outcome, Success):
        job = outcome.unwrap()
        logger.info(
            "created job %s: %s, tenant %s, %d file(s), %d bytes",
            job.uid,
            spec.bundle,
            spec.tenant,
            len(spec.files),
            sum(f.size for f in spec.files),
        )
    return outcome.alt(partial(_masked, token)).alt(_unknown_if_sent).alt(_maybe_created)


def _maybe_created(error: RunwayError) -> RunwayError:
    """A 5xx from ``POST /jobs``: Runway may have failed after creating the job."""
    if error.status is None or error.status < 500 or error.status == 503:
        return error
    return error.replace(
        message=f"{error.message.rstrip('.')}. Runway may have created the job before failing: check "
        "the Runway UI before loading again (it is not sent twice automatically)"
    )


def _unknown_if_sent(error: RunwayError) -> RunwayError:
    if not isinstance(error, NetworkError) or not error.request_sent:
        return error
    return OutcomeUnknownError(
        f"{error.message}. The request may have reached Runway and created a job: check "
        "the Runway UI before loading again (it is not sent twice automatically)",
        step=error.step,
    )


def upload_file(
    transport: Transport,
    job: Job,
    key: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    sha256: bool = True,
    verify_etag: bool = False,
    ahead: HashAhead | None = None,
) -> Result[UploadReceipt, RunwayError]:
    """Stream the file of ``key`` to its presigned URL; the receipt has its bytes and
    SHA-256 (``None`` when ``sha256`` is false).

    A PUT is idempotent: network failures, timeouts, 5xx and 503 ``SlowDown`` are
    tried again per ``policy``, each time from byte 0 of the file reopened (and
    refused if its size changed). A transfer has no total deadline: it fails
    when it stalls (no byte moving for the read timeout). When ``cancel`` is set
    the upload ends before its next block (``CancelledError``). ``on_progress``
    hears ``FileProgress`` per block and ``FileUploaded`` at the end. With
    ``verify_etag`` S3's ``ETag`` must be the quoted hex MD5 of the file (a single
    PUT's ETag, without SSE-KMS/SSE-C). ``ahead``: a ``HashAhead`` whose hashing of
    the same file began before the job existed (it is adopted). Errors (all naming the job):
    ``StorageError`` with S3's code, ``IntegrityError`` (a ``StorageError``) for an
    ETag that is not the file's MD5, ``InputError`` if the file changed since it
    was checked or while it was sent, ``NetworkError``, ``CancelledError``.
    """
    once = partial(
        _upload_once, transport, job, key, cancel, on_progress, sha256, verify_etag, ahead
    )
    return retrying(once, _busy_or_unreachable, policy, cancel=cancel)


def _upload_once(
    transport: Transport,
    job: Job,
    key: str,
    cancel: threading.Event | None,
    on_progress: OnProgress | None,
    sha256: bool,
    verify_etag: bool,
    ahead: HashAhead | None,
    _number: int,
) -> Result[UploadReceipt, RunwayError]:
    source = job.spec.file(key)
    if cancel is not None and cancel.is_set():
        return Failure(_upload_cancelled(job, key))
    opened = open_upload_body(source, sha256=sha256, md5=verify_etag, ahead=ahead)
    if not isinstance(opened, Success):
        return Failure(opened.failure().for_job(job.uid))
    began = time.monotonic()
    on_sent = _sent_hook(job, source.key, source.name, source.size, cancel, on_progress)
    with opened.unwrap() as body:
        answer: Result[HttpResponse, RunwayError] = transport.put(
            job.upload_urls[key], body, headers=upload_headers(), step="upload", on_sent=on_sent
        )
        early = answer.bind(partial(_answered_early, body.bytes_sent, source, job.uid))
        if not isinstance(early, Success):
            return Failure(early.failure().for_job(job.uid))
        etag = answer.bind(partial(decode_upload, key=key, file_name=source.name, job_uid=job.uid))
        if not isinstance(etag, Success):
            return Failure(etag.failure().for_job(job.uid))
        digests = body.finish()
        if not isinstance(digests, Success):
            return Failure(digests.failure().for_job(job.uid))
    if verify_etag:
        stored = etag_matches(
            etag.unwrap(), digests.unwrap().md5, key=key, file_name=source.name, job_uid=job.uid
        )
        if not isinstance(stored, Success):
            return Failure(stored.failure())
    seconds = time.monotonic() - began
    logger.info(
        "uploaded %s (%s): %d bytes in %.3f s [job %s]",
        key,
        source.name,
        source.size,
        seconds,
        job.uid,
    )
    if on_progress is not None:
        on_progress(
            FileUploaded(
                job_uid=job.uid,
                key=key,
                file_name=source.name,
                bytes=source.size,
                seconds=round(time.monotonic() - began, 3),
            )
        )
    return Success(
        UploadReceipt(
            key=key,
            path=source.path,
            file_name=source.name,
            bytes=source.size,
            sha256=digests.unwrap().sha256,
            etag=etag.unwrap(),
        )
    )


def _answered_early(
    sent: int, source: InputFile, job_uid: str, response: HttpResponse
) -> Result[None, RunwayError]:
    """A success answered before the whole body was sent is storage's (or a proxy's)
    fault, not the user's: a ``NetworkError``, tried again like any broken PUT."""
    if sent >= source.size or not 200 <= response.status < 300:
        return Success(None)
    return Failure(
        NetworkError(
            f"storage answered HTTP {response.status} to the upload of {source.key} "
            f"({source.name}) after only {sent} of {source.size} bytes were sent; the "
            "object cannot be complete",
            step="upload",
            job_uid=job_uid,
        )
    )


def _upload_cancelled(job: Job, key: str) -> RunwayError:
    return cancelled(None, step="upload", what=f"the upload of {key} was ended").for_job(job.uid)


def _sent_hook(
    job: Job,
    key: str,
    file_name: str,
    total: int,
    cancel: threading.Event | None,
    on_progress: OnProgress | None,
) -> OnSent | None:
    """The ``on_sent`` hook of one upload: ends it once ``cancel`` is set (the
    transport returns the ``CancelledError`` raised here), and reports progress.
    The transport also calls it with 0 while it waits (for the answer too), so a
    cancel is seen then; that reports nothing."""
    if cancel is None and on_progress is None:
        return None
    sent = 0

    def hook(count: int) -> None:
        nonlocal sent
        if cancel is not None and cancel.is_set():
            raise _upload_cancelled(job, key)
        sent += count
        if on_progress is not None and count:  # 0: the transport waiting, asking
            on_progress(
                FileProgress(job_uid=job.uid, key=key, file_name=file_name, sent=sent, total=total)
            )

    return hook


def upload(
    transport: Transport,
    job: Job,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    done: tuple[UploadReceipt, ...] = (),
    concurrency: int = DEFAULT_UPLOAD_CONCURRENCY,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    sha256: bool = True,
    verify_etag: bool = False,
    ahead: HashAhead | None = None,
    on_uploaded: Callable[[UploadReceipt], None] | None = None,
) -> Result[UploadedJob, RunwayError]:
    """Upload every file of ``job`` not in ``done``, up to ``concurrency`` at once
    (``sha256``, ``verify_etag`` and ``ahead`` as for ``upload_file``).
    ``on_uploaded`` is told each file's receipt the moment that file is uploaded
    (from the upload threads), e.g. to journal it before the others finish.

    Each file has its own presigned URL, so the files go in parallel (one
    connection each; S3 limits each stream, not the job). After the first
    failure no further file is begun; the uploads under way finish (or end, if
    ``cancel`` is set) and count as done. The failure's ``pending`` then holds the
    job and the files uploaded, for ``resume``. Receipts come back in
    the spec's order. A ``cancel`` set before or during ends it with
    ``CancelledError`` (carrying ``pending``). ``job`` must be what ``create_job``
    returned (``TypeError`` otherwise, before any request).

    Example::

        uploaded = create_job(transport, config, token, spec).bind(partial(upload, transport))
    """
    _expect("upload", "job", job, Job, "create_job")
    finished = {receipt.key: receipt for receipt in done}
    todo = [source.key for source in job.spec.files if source.key not in finished]
    failures: list[RunwayError] = []
    stop = threading.Event()  # no new file after a failure
    lock = threading.Lock()

    def one(key: str) -> None:
        if stop.is_set():
            return
        if cancel is not None and cancel.is_set():
            outcome: Result[UploadReceipt, RunwayError] = Failure(_upload_cancelled(job, key))
        else:
            outcome = upload_file(
                transport,
                job,
                key,
                policy=policy,
                cancel=cancel,
                on_progress=on_progress,
                sha256=sha256,
                verify_etag=verify_etag,
                ahead=ahead,
            )
        with lock:
            if isinstance(outcome, Success):
                finished[key] = outcome.unwrap()
            else:
                failures.append(outcome.failure())
                stop.set()
        if on_uploaded is not None and isinstance(outcome, Success):
            on_uploaded(outcome.unwrap())

    workers = max(1, min(concurrency, len(todo)))
    if workers == 1:
        for key in todo:
            one(key)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runway-upload") as pool:
            for ran in [pool.submit(one, key) for key in todo]:
                ran.result()  # a bug in a worker surfaces here
    if failures:
        error = _first_failure(failures)
        if is_forbidden(error):  # the URLs expired: the job can never be finished
            return Failure(error.for_job(job.uid))
        ordered_done = tuple(
            finished[source.key] for source in job.spec.files if source.key in finished
        )
        return Failure(resumable(pending_after(job, ordered_done), error))
    ordered = tuple(finished[source.key] for source in job.spec.files)
    return Success(UploadedJob(job=job, receipts=ordered))


def pending_after(job: Job, receipts: tuple[UploadReceipt, ...]) -> PendingJob:
    """The ``PendingJob`` of ``job`` after a failed upload: each file not uploaded gets
    the SHA-256 of its contents recorded (``files.fingerprint``) if it is still as it
    was when the job was created, so a resume refuses other contents."""
    done = {receipt.key for receipt in receipts}
    files = tuple(f if f.key in done else fingerprint(f) for f in job.spec.files)
    spec = msgspec.structs.replace(job.spec, files=files)
    return PendingJob(job=msgspec.structs.replace(job, spec=spec), receipts=receipts)


def _first_failure(failures: list[RunwayError]) -> RunwayError:
    """The failure to report: a real one over the cancellations it caused."""
    real = [error for error in failures if not isinstance(error, CancelledError)]
    return (real or failures)[0]


def start(
    transport: Transport, config: RunwayConfig, token: Token, uploaded: UploadedJob
) -> Result[LoadReceipt, RunwayError]:
    """``POST /jobs/<uid>/start`` (202): Runway begins the run; the receipt is returned.

    Sent once, and again only when Runway cannot have seen it (no connection was
    made) or said 429: Runway runs a job again when it is started after its run
    ended (CONTRACT.md, start), so a start whose answer was lost is never blindly
    repeated here; the flows settle it (``_pipeline._start_once``). Errors name the
    job and carry ``pending`` (to resume), except ``RequestRejectedError`` with
    ``code == "job_already_started"`` (the job is running: nothing to resume);
    others: ``RequestRejectedError`` (a file missing or empty on S3: ``code ==
    "files_missing"``), ``NotFoundError``, and the API errors of ``create_job``.

    Given a ``Job`` whose files were not uploaded (a flow that skipped
    ``upload``), nothing is sent: the ``Failure`` is an ``InputError`` carrying
    the job as ``pending``, so it can still be finished with ``resume``. Any
    other value is a ``TypeError``.

    Example::

        receipt = uploaded.bind(partial(start, transport, config, token))  # Result[LoadReceipt, ...]
        print(receipt.unwrap().job_uid)
    """
    if isinstance(uploaded, Job):
        return Failure(
            InputError(
                f"start takes an UploadedJob (what upload returns), got the Job {uploaded.uid} "
                "whose files were not uploaded: upload them first (or resume the job)",
                step="start",
                pending=PendingJob(job=uploaded),
            )
        )
    _expect("start", "uploaded", uploaded, UploadedJob, "upload")
    _expect("start", "token", token, Token, "authorize or a TokenCache")
    job = uploaded.job

    deadline = deadline_for(config.retry)

    def attempt(_number: int) -> Result[None, RunwayError]:
        answer = transport.send(
            start_request(config, token, job.uid), step="start", deadline=deadline
        )
        return answer.bind(partial(decode_start, job_uid=job.uid))

    decoded = retrying(attempt, _certainly_not_received, config.retry, deadline=deadline).alt(
        partial(_masked, token)
    )
    if isinstance(decoded, Success):
        logger.info("started job %s", job.uid)
    elif decoded.failure().code == JOB_ALREADY_STARTED:  # running: resuming cannot help
        return Failure(decoded.failure().for_job(job.uid))
    pending = PendingJob(job=job, receipts=uploaded.receipts)
    return decoded.map(partial(_receipt, uploaded)).alt(partial(resumable, pending))


def receipt_for(uploaded: UploadedJob) -> LoadReceipt:
    """The ``LoadReceipt`` of a job whose files are uploaded and which is started."""
    return _receipt(uploaded, None)


def resumable(pending: PendingJob, error: RunwayError) -> RunwayError:
    """``error`` of a job created but not started, naming it and carrying ``pending``
    (what ``resume`` needs); the one place ``pending`` is attached. An error that
    already carries one is kept; a 404 (Runway knows no such job) only names it.
    """
    if error.pending is not None:
        return error
    if isinstance(error, NotFoundError):  # nothing to resume
        return error.for_job(pending.job.uid)
    return error.replace(pending=pending)


def _expect(step: str, name: str, value: object, kind: type, made_by: str) -> None:
    """A programming error (a wrong value given to a step) raises ``TypeError`` before
    any request, naming what makes the right value."""
    if not isinstance(value, kind):
        raise TypeError(
            f"{step}() takes a {kind.__name__} as {name} (what {made_by} returns), "
            f"got {type(value).__name__}"
        )


def _masked(token: Token, error: RunwayError) -> RunwayError:
    """``error`` with the access token masked, should the server have echoed it."""
    return error.masking(token.access_token.reveal())


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


# ---------------------------------------------------------------- the read side


def verify_token(
    transport: Transport, config: RunwayConfig, token: Token
) -> Result[tuple[str, ...], RunwayError]:
    """``POST /token/verify``: the partner codes ``token`` may act for (``()`` for none).

    Needs a token with ``create:jobs`` (``wire.load_scopes``). It changes nothing,
    so network failures, 429 and 5xx are tried again per ``config.retry``.

    Example::

        verify_token(transport, config, token).unwrap()   # ('ea',)
    """
    request = verify_token_request(config, token)
    outcome = _read(transport, config, request, "verify_token", decode_verify_token)
    return outcome.alt(partial(_masked, token))


def _read(
    transport: Transport,
    config: RunwayConfig,
    request: HttpRequest,
    step: Step,
    decode: Callable[[HttpResponse], Result[_T, RunwayError]],
) -> Result[_T, RunwayError]:
    """Send a request that changes nothing on the server, retrying per ``config.retry``."""

    deadline = deadline_for(config.retry)

    def attempt(_number: int) -> Result[_T, RunwayError]:
        return transport.send(request, step=step, deadline=deadline).bind(decode)

    return retrying(attempt, _busy_or_unreachable, config.retry, deadline=deadline)


def list_output_sets(
    transport: Transport, config: RunwayConfig, token: Token, query: OutputSetQuery
) -> Result[tuple[OutputSet, ...], RunwayError]:
    """``GET /output-sets``: the output sets of successful runs matching ``query``,
    oldest first. Needs ``read:jobs`` (``wire.read_scopes``). Retried like
    ``verify_token``, so one blip does not end a long ``wait_for_outputs``.

    Example::

        query = make_output_set_query(partner_code="ea", tenant_code="ea", school_year="2526").unwrap()
        token = authorize(transport, config, read_scopes("ea")).unwrap()
        sets = list_output_sets(transport, config, token, query).unwrap()
    """
    request = output_sets_request(config, token, query)
    outcome = _read(transport, config, request, "list_output_sets", decode_output_sets)
    return outcome.alt(partial(_masked, token))


def get_download_links(
    transport: Transport, config: RunwayConfig, token: Token, output_set: OutputSet | str
) -> Result[DownloadLinks, RunwayError]:
    """Presigned GET URLs (valid up to 1 hour) for each file of ``output_set`` (or its uid).

    Needs ``read:jobs:output-files`` (``wire.download_scopes``). The links are
    short-lived signatures, not a change of state, so this is retried like
    ``verify_token``.

    Example::

        token = authorize(transport, config, download_scopes("ea")).unwrap()
        links = get_download_links(transport, config, token, sets[-1]).unwrap().links
    """
    set_uid = output_set.uid if isinstance(output_set, OutputSet) else output_set
    if not is_job_uid(set_uid):
        return Failure(_not_a_set_uid(set_uid))
    request = download_links_request(config, token, set_uid)
    decode = partial(decode_download_links, set_uid=set_uid, allow_http=config.allow_http)
    outcome = _read(transport, config, request, "get_download_links", decode)
    return outcome.alt(partial(_masked, token))


def _not_a_set_uid(set_uid: object) -> RunwayError:
    return InputError.of(
        [f"the output set uid must be a UUID, as Runway makes them; got {str(set_uid)[:80]!r}"]
    )


def download_file(
    transport: Transport,
    links: DownloadLinks,
    name: str,
    folder: Path,
    *,
    overwrite: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> Result[DownloadReceipt, RunwayError]:
    """Stream the file ``name`` of ``links`` into ``folder``, checked against its
    ``Content-Length`` and renamed into place only when complete.

    A file already there with the announced size is kept (``skipped``) unless
    ``overwrite``. The bytes are saved as stored: ``Content-Encoding`` is not decoded.
    A GET may be repeated: network failures, a body cut short, 429 and 5xx are
    tried again per ``policy`` (a 403 is for ``download`` to answer with fresh
    links). Errors: ``StorageError`` (S3's code; 403 for an expired link),
    ``NetworkError`` (nothing is left under the final name), ``InputError`` (the
    disk refused), ``ProtocolError`` (a bad name, or no length).
    """
    checked = output_file_name(name)
    if not isinstance(checked, Success):
        return Failure(checked.failure())
    once = partial(_download_once, transport, links, name, folder, overwrite)
    return retrying(once, _busy_or_unreachable, policy)


def _download_once(
    transport: Transport,
    links: DownloadLinks,
    name: str,
    folder: Path,
    overwrite: bool,
    _number: int,
) -> Result[DownloadReceipt, RunwayError]:
    with DownloadFile(folder / name, overwrite=overwrite) as target:
        answer = transport.get(links.links[name], target, step="download")
        announced = answer.bind(partial(decode_download, name=name, set_uid=links.set_uid))
        if not isinstance(announced, Success):
            return Failure(announced.failure())
        if target.skipped:
            kept = existing_file(target.final)
            if kept is not None:
                return Success(
                    DownloadReceipt(
                        name=name,
                        path=str(target.final),
                        bytes=kept[0],
                        sha256=kept[1],
                        skipped=True,
                    )
                )
            return Failure(
                InputError(f"{str(target.final)!r} vanished while being checked", step="download")
            )
        if target.bytes_written != announced.unwrap():
            return Failure(
                NetworkError(
                    f"the download of {name!r} ended after {target.bytes_written} of "
                    f"{announced.unwrap()} bytes; nothing was saved",
                    step="download",
                )
            )
        digest = target.commit()
        if not isinstance(digest, Success):
            return Failure(digest.failure())
    return Success(
        DownloadReceipt(
            name=name,
            path=str(target.final),
            bytes=target.bytes_written,
            sha256=digest.unwrap(),
            skipped=target.skipped,  # the same bytes were there already: kept
        )
    )


def download(
    transport: Transport,
    config: RunwayConfig,
    token: Token,
    output_set: OutputSet | str,
    dest_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Result[tuple[DownloadReceipt, ...], RunwayError]:
    """Download every file of ``output_set`` (or its uid) into ``dest_dir`` (created if missing).

    When a file answers 403 (its link expired, or the server's credentials
    rotated: CONTRACT.md, "Output sets"), fresh links are fetched once and the
    download goes on. Returns one ``DownloadReceipt`` per file, in the links' order.

    Example::

        token = authorize(transport, config, download_scopes("ea")).unwrap()
        for saved in download(transport, config, token, sets[-1], "outputs/").unwrap():
            print(saved.name, saved.bytes, saved.sha256)
    """
    set_uid = output_set.uid if isinstance(output_set, OutputSet) else output_set
    if not is_job_uid(set_uid):
        return Failure(_not_a_set_uid(set_uid))
    folder = prepare_destination(dest_dir)
    if not isinstance(folder, Success):
        return Failure(folder.failure())
    remove_stale_parts(folder.unwrap())  # left by downloads that were killed
    links = get_download_links(transport, config, token, output_set)
    if not isinstance(links, Success):
        return Failure(links.failure())
    for name in links.unwrap().links:  # every name, before the first file is written
        checked = output_file_name(name)
        if not isinstance(checked, Success):
            return Failure(checked.failure())
    current, refreshed = links.unwrap(), False
    receipts: list[DownloadReceipt] = []
    for name in list(current.links):
        fetch = partial(
            download_file,
            transport,
            folder=folder.unwrap(),
            overwrite=overwrite,
            policy=config.retry,
        )
        outcome = fetch(current, name)
        if isinstance(outcome, Failure) and is_forbidden(outcome.failure()) and not refreshed:
            fresh = get_download_links(transport, config, token, current.set_uid)
            if not isinstance(fresh, Success):
                return Failure(fresh.failure())
            current, refreshed = fresh.unwrap(), True
            if name not in current.links:
                return Failure(
                    ProtocolError(f"fresh links no longer list {name!r}", step="download")
                )
            outcome = fetch(current, name)
        if not isinstance(outcome, Success):
            return Failure(outcome.failure())
        receipts.append(outcome.unwrap())
    return Success(tuple(receipts))
