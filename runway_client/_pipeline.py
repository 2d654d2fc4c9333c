"""Flows composed from the steps.

- ``prepare_job``: every local check, before anything is sent;
- ``load_files``: authorize -> create_job -> upload -> start;
- ``resume``: finish a job created but not started (``error.pending``);
- ``wait_for_outputs``: poll output sets until the job's appears;
- ``follow_up``: after a started job, wait for its outputs and download them;
- ``load_and_wait``, ``fetch_outputs``: the above chained.

Written in ``Result.do`` notation: the first ``Failure`` ends a flow and is
returned as it is. A custom flow is another composition of the same steps.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import Final

from msgspec.structs import replace
from returns.result import Failure, Result, Success

from runway_client._config import RunwayConfig, transfer_url_problem
from runway_client._errors import InputError, NotFoundError, OutputsNotReadyError, RunwayError
from runway_client._events import JobCreated, JobStarted, LoadFailed, OnProgress, StillWaiting
from runway_client._files import check_destination, check_input_files, same_as_when_created
from runway_client._models import (
    DownloadReceipt,
    Job,
    JobSpec,
    LoadReceipt,
    OutputSet,
    OutputSetQuery,
    PendingJob,
    SchoolYear,
    Token,
    UploadedJob,
    UploadReceipt,
    is_job_uid,
    make_job_spec,
    pending_problems,
)
from runway_client._retry import cancelled
from runway_client._steps import (
    Authorizer,
    TokenSource,
    already_started,
    create_job,
    download,
    list_output_sets,
    receipt_for,
    start,
    upload,
    with_token,
)
from runway_client._transport import Transport
from runway_client.wire import download_scopes, load_scopes, read_scopes

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "TokenSource",
    "fetch_outputs",
    "follow_up",
    "load_and_wait",
    "load_files",
    "output_set_query_for",
    "prepare_job",
    "resume",
    "start_uploaded",
    "wait_for_outputs",
    "wait_problems",
]


def prepare_job(
    *,
    partner: str,
    tenant: str,
    bundle: str,
    school_year: object,
    input_files: object,
    params: Mapping[str, str] | None = None,
) -> Result[JobSpec, RunwayError]:
    """Check everything local (files on disk, school year, names) and build the ``JobSpec``.

    All problems come back together in one ``InputError``, before any request.

    >>> spec = prepare_job(partner="ea", tenant="ea", bundle="assessments/PSAT_SAT", school_year="2527",
    ...                    input_files={"INPUT_FILE": "/no/such.csv"})
    >>> print(spec.failure().message)  # doctest: +ELLIPSIS
    input_files['INPUT_FILE'] = '/no/such.csv': no such file; check the path; school_year '2527' is not a school year: ...
    """
    files = check_input_files(input_files)
    spec = make_job_spec(
        partner=partner,
        tenant=tenant,
        bundle=bundle,
        school_year=school_year,
        files=files.value_or(()),
        params=params,
    )
    problems = [
        *(_problems(files.failure()) if isinstance(files, Failure) else ()),
        *(_problems(spec.failure()) if isinstance(spec, Failure) else ()),
    ]
    if problems:
        return Failure(InputError.of(problems))
    return spec


def _problems(error: RunwayError) -> tuple[str, ...]:
    return error.problems if isinstance(error, InputError) and error.problems else (error.message,)


def load_files(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Load ``spec``: authorize, create the job, upload every file, start it.

    ``token_source`` supplies the token (``RunwayClient`` passes its cache);
    by default a fresh one is fetched with ``authorize``. Returns the
    ``LoadReceipt``, or the first step's ``RunwayError`` (naming the job once
    one exists).

    ``cancel``: once set, no job is created, no further step begins and the
    uploads under way end at their next block; the result is then
    ``CancelledError``, carrying ``pending`` when the job exists (resume it
    later). ``on_progress`` hears the ``runway_client._events`` as they happen
    (from the upload threads too). The files go up to
    ``config.upload_concurrency`` at a time.

    Example (settings from ``RUNWAY_*``; see ``config_from_env``)::

        config = config_from_env().unwrap()
        transport = RequestsTransport(connect_timeout=10, read_timeout=120)
        spec = prepare_job(partner=config.partner_code, tenant="ea", bundle="assessments/PSAT_SAT",
                           school_year="2526", input_files={"INPUT_FILE": "examples/sat.csv"}).unwrap()
        receipt = load_files(transport, config, spec)      # Result[LoadReceipt, RunwayError]
    """
    tokens = token_source or Authorizer(transport, config)
    scopes = load_scopes(config.partner_code)
    created = with_token(tokens, scopes, partial(_create, transport, config, spec, cancel))
    outcome = created.bind(
        partial(_upload_and_start, transport, config, tokens, scopes, (), cancel, on_progress)
    )
    return _told(on_progress, outcome)


def _upload_and_start(
    transport: Transport,
    config: RunwayConfig,
    tokens: TokenSource,
    scopes: tuple[str, ...],
    done: tuple[UploadReceipt, ...],
    cancel: threading.Event | None,
    on_progress: OnProgress | None,
    job: Job,
    *,
    started_before: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """From a job that exists: upload what is not ``done``, then start it, unless
    ``cancel`` is set between the two (``started_before`` as for ``_started``)."""
    if not done and on_progress is not None:
        on_progress(
            JobCreated(
                job_uid=job.uid,
                tenant=job.spec.tenant,
                bundle=job.spec.bundle,
                files={source.key: source.size for source in job.spec.files},
                total_bytes=sum(source.size for source in job.spec.files),
            )
        )
    if _is_set(cancel):
        pending = PendingJob(job=job, receipts=done)
        return Failure(
            cancelled(None, step="upload", what="nothing uploaded").with_pending(pending)
        )
    uploaded = upload(
        transport,
        job,
        policy=config.retry,
        done=done,
        concurrency=config.upload_concurrency,
        cancel=cancel,
        on_progress=on_progress,
        sha256=config.upload_sha256,
        verify_etag=config.verify_etag,
    )
    if not isinstance(uploaded, Success):
        return Failure(uploaded.failure())
    if _is_set(cancel):
        pending = PendingJob(job=job, receipts=uploaded.unwrap().receipts)
        return Failure(
            cancelled(None, step="start", what="the job was not started").with_pending(pending)
        )
    return _started(
        transport, config, tokens, scopes, uploaded.unwrap(), started_before=started_before
    )


def _is_set(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _told(
    on_progress: OnProgress | None, outcome: Result[LoadReceipt, RunwayError]
) -> Result[LoadReceipt, RunwayError]:
    """``outcome`` as it is, after telling ``on_progress`` how the load ended."""
    if on_progress is not None:
        if isinstance(outcome, Success):
            on_progress(JobStarted(job_uid=outcome.unwrap().job_uid))
        else:
            error = outcome.failure()
            on_progress(
                LoadFailed(
                    job_uid=error.job_uid,
                    kind=error.kind,
                    step=error.step,
                    message=str(error),
                    resumable=error.pending is not None,
                )
            )
    return outcome


def _started(
    transport: Transport,
    config: RunwayConfig,
    tokens: TokenSource,
    scopes: tuple[str, ...],
    uploaded: UploadedJob,
    *,
    started_before: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """Start ``uploaded``; whatever fails now (the token too) names the job and carries
    what is needed to resume it.

    "Job already in progress" means an earlier start of ours got through only when
    there was one: a repeat here (after a 401), or ``started_before`` (a resume of a
    job whose start may have been sent). To the very first start it is an error:
    someone else started the job, with objects this client did not vouch for."""
    sent: list[None] = []

    def once(token: Token) -> Result[LoadReceipt, RunwayError]:
        repeat = started_before or bool(sent)
        sent.append(None)
        return _start_or_started(transport, config, uploaded, token, repeat=repeat)

    started = with_token(tokens, scopes, once)
    return started.alt(
        partial(_resumable, PendingJob(job=uploaded.job, receipts=uploaded.receipts))
    )


def start_uploaded(
    transport: Transport,
    config: RunwayConfig,
    uploaded: UploadedJob,
    *,
    token_source: TokenSource | None = None,
    started_before: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """Start a job this client created and uploaded (``client.start_job``): a repeat
    (within this call, or ``started_before``: this client asked before) that finds it
    started already is success; a failure names the job and carries ``pending``
    (for ``resume``)."""
    tokens = token_source or Authorizer(transport, config)
    scopes = load_scopes(uploaded.job.spec.partner)
    return _started(transport, config, tokens, scopes, uploaded, started_before=started_before)


def _resumable(pending: PendingJob, error: RunwayError) -> RunwayError:
    if error.pending is not None or isinstance(error, NotFoundError):
        return error
    return error.with_pending(pending)


def resume(
    transport: Transport,
    config: RunwayConfig,
    pending: PendingJob,
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    start_may_have_been_sent: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """Finish a job that was created but not started: upload what is missing, start it.

    ``start_may_have_been_sent``: an earlier run may have sent the start although
    ``pending`` lists fewer files (a journal that did not hear of the last uploads):
    then the start is asked for first, and "Job already in progress" is success.

    ``cancel`` and ``on_progress`` work as in ``load_files`` (a cancelled resume
    carries ``pending`` again).

    It first asks Runway to start the job: if that works (or the job turns out
    to be started already), nothing is uploaded again.

    ``pending`` comes from a failed load's ``error.pending`` (or
    ``PendingJob.from_json``). Each missing file is checked again (the size and
    SHA-256 it had when the job was made: another file is refused with
    ``InputChangedError``); no new job is ever created. If the job turns out
    to be started already (an earlier start got through), that is success. Upload
    URLs expire an hour after the job was created: then this fails with a
    ``StorageError`` saying a new load is needed.

    Example::

        loaded = load_files(transport, config, spec)
        if isinstance(loaded, Failure) and loaded.failure().pending is not None:
            loaded = resume(transport, config, loaded.failure().pending)
    """
    problems = [f"the pending job is damaged: {p}" for p in pending_problems(pending)]
    for key, url in pending.job.upload_urls.items():
        problem = transfer_url_problem(url, allow_http=config.allow_http)
        if problem is not None:
            problems.append(f"the pending job's upload URL for {key} {problem}")
    if pending.job.spec.partner != config.partner_code:
        problems.append(
            f"this job belongs to partner {pending.job.spec.partner!r}; this client acts "
            f"for {config.partner_code!r}: resume it with that partner's client"
        )
    if problems:
        return Failure(InputError.of(problems))
    tokens = token_source or Authorizer(transport, config)
    scopes = load_scopes(pending.job.spec.partner)
    if _is_set(cancel):
        return Failure(cancelled(None, step="start", what="nothing done").with_pending(pending))
    done = {receipt.key for receipt in pending.receipts}
    if start_may_have_been_sent or done >= {f.key for f in pending.job.spec.files}:
        # Every file is uploaded, so a start may have been sent (its answer lost): start
        # first, and a job started since is finished without uploading anything again.
        known = UploadedJob(job=pending.job, receipts=pending.receipts)
        probe = _started(transport, config, tokens, scopes, known, started_before=True)
        if isinstance(probe, Success) or not _files_missing(probe.failure()):
            return _told(on_progress, probe)
    # A file not uploaded (or refused: it changed) is never started on: upload the
    # missing files first, each checked to be the one the job was created with.
    for source in pending.job.spec.files:
        if source.key not in done:
            same = same_as_when_created(source)
            if not isinstance(same, Success):
                return _told(on_progress, Failure(same.failure().with_pending(pending)))
    finished = _upload_and_start(
        transport,
        config,
        tokens,
        scopes,
        pending.receipts,
        cancel,
        on_progress,
        pending.job,
        started_before=start_may_have_been_sent,
    )
    return _told(on_progress, finished)


def _files_missing(error: RunwayError) -> bool:
    """Runway's 400 for a start before every file is uploaded (CONTRACT.md, start)."""
    said = error.server_message
    return (
        error.status == 400
        and isinstance(said, str)
        and said.startswith("Some expected files were not found")
    )


def _create(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    cancel: threading.Event | None,
    token: Token,
) -> Result[Job, RunwayError]:
    if _is_set(cancel):  # the last moment before a job would exist
        return Failure(cancelled(None, step="create_job", what="no job was created"))
    return create_job(transport, config, token, spec)


def _start_or_started(
    transport: Transport, config: RunwayConfig, uploaded: UploadedJob, token: Token, *, repeat: bool
) -> Result[LoadReceipt, RunwayError]:
    started = start(transport, config, token, uploaded)
    if repeat and isinstance(started, Failure) and already_started(started.failure()):
        return Success(receipt_for(uploaded))
    return started


DEFAULT_WAIT_SECONDS: Final = 3600.0
"""How long ``wait_for_outputs`` waits by default (seconds)."""
DEFAULT_POLL_SECONDS: Final = 15.0
"""How often ``wait_for_outputs`` asks by default (seconds)."""
CLOCK_SKEW_SECONDS: Final = 120.0
"""Output sets created this long before the job's (client-clock) creation still count."""


def output_set_query_for(receipt: LoadReceipt) -> OutputSetQuery:
    """The narrowest ``OutputSetQuery`` that still finds ``receipt``'s output set.

    ``created_after`` is the job's creation time minus ``CLOCK_SKEW_SECONDS``, so a
    server clock behind ours cannot hide the set.
    """
    return OutputSetQuery(
        partner=receipt.partner,
        tenant=receipt.tenant,
        bundle=receipt.bundle,
        school_year=SchoolYear(end_year=int(receipt.school_year)),
        created_after=receipt.created_at - timedelta(seconds=CLOCK_SKEW_SECONDS),
    )


def wait_problems(timeout: object, poll_interval: object) -> list[str]:
    """What is wrong with a wait's ``timeout`` (0 to 7 days) and ``poll_interval``
    (0.01 s to 1 day), in seconds; an empty list when nothing is.

    >>> wait_problems(60, 0)
    ['poll_interval must be a number of seconds from 0.01 to 86400, got 0']
    """
    problems = []
    for name, value, low, high in (
        ("timeout", timeout, 0.0, 7 * 86400.0),
        ("poll_interval", poll_interval, 0.01, 86400.0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high  # NaN fails too
        ):
            problems.append(
                f"{name} must be a number of seconds from {low:g} to {high:g}, got {value!r}"
            )
    return problems


def wait_for_outputs(
    transport: Transport,
    config: RunwayConfig,
    job_uid: str,
    *,
    query: OutputSetQuery | None = None,
    timeout: float = DEFAULT_WAIT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    token_source: TokenSource | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[OutputSet, RunwayError]:
    """Poll ``GET /output-sets`` until one with ``jobUid == job_uid`` appears.

    The API has no job-status endpoint: a run's success shows only as an output
    set (CONTRACT.md, "Output sets"). ``timeout`` and ``poll_interval`` are
    seconds; ``query`` narrows the listing (default: the partner's sets). After
    ``timeout``, ``OutputsNotReadyError`` says the run may still be running or
    may have failed, and where to look. A failed listing ends the wait at once.
    ``cancel`` ends the wait (``CancelledError`` naming the job); ``on_progress``
    hears a ``StillWaiting`` heartbeat after each look that found nothing.

    Example::

        output_set = wait_for_outputs(transport, config, receipt.job_uid, timeout=600).unwrap()
        print(output_set.files)   # ('studentAssessments.jsonl', ...)
    """
    problems = wait_problems(timeout, poll_interval)
    if not is_job_uid(job_uid):
        problems.append(f"job_uid must be a job's uid (a UUID), got {str(job_uid)[:80]!r}")
    if problems:
        return Failure(InputError.of(problems))
    tokens = token_source or Authorizer(transport, config)
    wanted = query or OutputSetQuery(partner=config.partner_code)
    began = clock()
    deadline = began + timeout
    looks = 0  # early looks come quickly (0.5 s, 1 s, 2 s ...) up to poll_interval
    while True:
        listed = with_token(
            tokens, read_scopes(wanted.partner), partial(_list, transport, config, wanted)
        )
        if not isinstance(listed, Success):
            return Failure(listed.failure().for_job(job_uid))
        found = next((s for s in listed.unwrap() if s.job_uid == job_uid), None)
        if found is not None:
            return Success(found)
        remaining = deadline - clock()
        if remaining <= 0:
            return Failure(
                OutputsNotReadyError(
                    f"no output set for job {job_uid} after {timeout:g} s: the run has not "
                    "produced outputs yet; it may still be running, or may have failed "
                    "(failed runs produce none). See the job in the Runway UI",
                    step="wait_for_outputs",
                    job_uid=job_uid,
                )
            )
        if on_progress is not None:
            on_progress(
                StillWaiting(job_uid=job_uid, waited=round(clock() - began, 1), timeout=timeout)
            )
        pause = max(0.0, min(poll_interval, 0.5 * 2.0**looks, remaining))
        if cancel is not None:
            if cancel.wait(pause):
                return Failure(
                    cancelled(None, step="wait_for_outputs", what="the wait ended").for_job(job_uid)
                )
        else:
            sleep(pause)
        looks += 1


def follow_up(
    transport: Transport,
    config: RunwayConfig,
    receipt: LoadReceipt,
    *,
    timeout: float = DEFAULT_WAIT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    dest_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """After a started job: wait for its output set, and download it when ``dest_dir``
    is given. The receipt comes back with ``output_set`` (and ``downloads``).

    The load itself has succeeded by then, so a failure here says so: the job
    must not be loaded again (``OutputsNotReadyError`` after ``timeout``; a
    download error names the output set to fetch later).

    Example::

        receipt = follow_up(transport, config, receipt, timeout=600, dest_dir="outputs/").unwrap()
    """
    tokens = token_source or Authorizer(transport, config)
    waited = wait_for_outputs(
        transport,
        config,
        receipt.job_uid,
        query=output_set_query_for(receipt),
        timeout=timeout,
        poll_interval=poll_interval,
        token_source=tokens,
        cancel=cancel,
        on_progress=on_progress,
    )
    if not isinstance(waited, Success):
        return Failure(_after_the_load(waited.failure(), receipt, None))
    found = replace(receipt, output_set=waited.unwrap())
    if dest_dir is None:
        return Success(found)
    fetched = fetch_outputs(
        transport, config, waited.unwrap(), dest_dir, overwrite=overwrite, token_source=tokens
    )
    if not isinstance(fetched, Success):
        return Failure(_after_the_load(fetched.failure(), receipt, waited.unwrap()))
    return Success(replace(found, downloads=fetched.unwrap()))


def _after_the_load(
    error: RunwayError, receipt: LoadReceipt, output_set: OutputSet | None
) -> RunwayError:
    """``error`` told as what it is: a failure after a successful load."""
    if output_set is None:
        news = (
            f"The load itself succeeded (job {receipt.job_uid} is started): do not load "
            f"again; to keep waiting: runway-client outputs wait {receipt.job_uid}"
        )
    else:
        news = (
            f"The load succeeded and its run produced output set {output_set.uid}: do not "
            f"load again; fetch the files later with: runway-client outputs download "
            f"{output_set.uid} --dest <folder> (or client.download)"
        )
    told = error.with_message(f"{error.message.rstrip('.')}. {news}").for_job(receipt.job_uid)
    told.pending = None
    return told


def load_and_wait(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    *,
    timeout: float = DEFAULT_WAIT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    dest_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """``load_files``, then ``follow_up``: the receipt carries its ``output_set`` (and,
    with ``dest_dir``, its ``downloads``). ``dest_dir`` is checked before the job
    is created, and made only when there is something to put in it.

    Example::

        receipt = load_and_wait(transport, config, spec, timeout=600, dest_dir="outputs/").unwrap()
        print(receipt.output_set.uid, [d.name for d in receipt.downloads])
    """
    tokens = token_source or Authorizer(transport, config)
    if dest_dir is not None:
        usable = check_destination(dest_dir)
        if not isinstance(usable, Success):
            return Failure(usable.failure())
    loaded = load_files(
        transport, config, spec, token_source=tokens, cancel=cancel, on_progress=on_progress
    )
    return loaded.bind(
        partial(
            _follow,
            transport,
            config,
            timeout=timeout,
            poll_interval=poll_interval,
            dest_dir=dest_dir,
            overwrite=overwrite,
            tokens=tokens,
            cancel=cancel,
            on_progress=on_progress,
        )
    )


def _follow(
    transport: Transport,
    config: RunwayConfig,
    receipt: LoadReceipt,
    *,
    timeout: float,
    poll_interval: float,
    dest_dir: str | os.PathLike[str] | None,
    overwrite: bool,
    tokens: TokenSource,
    cancel: threading.Event | None,
    on_progress: OnProgress | None,
) -> Result[LoadReceipt, RunwayError]:
    return follow_up(
        transport,
        config,
        receipt,
        timeout=timeout,
        poll_interval=poll_interval,
        dest_dir=dest_dir,
        overwrite=overwrite,
        token_source=tokens,
        cancel=cancel,
        on_progress=on_progress,
    )


def fetch_outputs(
    transport: Transport,
    config: RunwayConfig,
    output_set: OutputSet,
    dest_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    token_source: TokenSource | None = None,
) -> Result[tuple[DownloadReceipt, ...], RunwayError]:
    """Download every file of ``output_set`` into ``dest_dir`` with a download-scoped token.

    Example::

        saved = fetch_outputs(transport, config, output_set, "outputs/").unwrap()
    """
    tokens = token_source or Authorizer(transport, config)
    return with_token(
        tokens,
        download_scopes(output_set.partner),
        partial(_download, transport, config, output_set, dest_dir, overwrite),
    )


def _list(
    transport: Transport, config: RunwayConfig, query: OutputSetQuery, token: Token
) -> Result[tuple[OutputSet, ...], RunwayError]:
    return list_output_sets(transport, config, token, query)


def _download(
    transport: Transport,
    config: RunwayConfig,
    output_set: OutputSet,
    dest_dir: str | os.PathLike[str],
    overwrite: bool,
    token: Token,
) -> Result[tuple[DownloadReceipt, ...], RunwayError]:
    return download(transport, config, token, output_set, dest_dir, overwrite=overwrite)
