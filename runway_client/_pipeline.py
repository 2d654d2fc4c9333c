"""Flows composed from the steps, each ``(...) -> Result[value, RunwayError]``.

- ``prepare_job``: every local check, before anything is sent;
- ``load_files``: token -> job -> uploaded -> receipt (``create_job``, ``upload``, ``start``);
- ``resume``: finish a job created but not started (``error.pending``);
- ``wait_for_outputs``: poll output sets until the job's appears;
- ``follow_up``: after a started job, wait for its outputs and download them;
- ``load_and_wait``: ``load_files`` then ``follow_up``;
- ``check_token``, ``find_output_sets``, ``download_links``, ``fetch_outputs``: the read side.

Every flow takes ``token_source`` (any ``TokenSource``); without one it makes a
``TokenCache`` for the call, so a load asks the identity provider once and a wait
of any length once while the token lives. Pass one cache to many flows to share
its tokens (``RunwayClient`` does). The first ``Failure`` ends a flow and is
returned as it is. A custom flow is another composition of the same steps.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import NamedTuple

from msgspec.structs import replace
from returns.pipeline import flow
from returns.pointfree import bind
from returns.result import Failure, Result, Success

from runway_client._config import RunwayConfig, transfer_url_problem
from runway_client._defaults import (
    CLOCK_SKEW_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    MAX_POLL_SECONDS,
    MAX_WAIT_SECONDS,
    MIN_POLL_SECONDS,
)
from runway_client._errors import (
    FILES_MISSING,
    JOB_ALREADY_STARTED,
    AuthenticationError,
    InputError,
    NetworkError,
    OutputsNotReadyError,
    PermissionDeniedError,
    ProtocolError,
    RunwayError,
)
from runway_client._events import JobCreated, JobStarted, LoadFailed, OnProgress, StillWaiting
from runway_client._files import (
    HashAhead,
    check_destination,
    check_input_files,
    read_small,
    same_as_when_created,
)
from runway_client._models import (
    DownloadLinks,
    DownloadReceipt,
    Job,
    JobSpec,
    LoadReceipt,
    OutputSet,
    OutputSetQuery,
    PendingJob,
    SchoolYear,
    UploadedJob,
    UploadReceipt,
    is_job_uid,
    make_job_spec,
    pending_problems,
)
from runway_client._retry import cancelled, retrying
from runway_client._steps import (
    TokenSource,
    create_job,
    download,
    get_download_links,
    list_output_sets,
    receipt_for,
    resumable,
    start,
    upload,
    verify_token,
    with_token,
)
from runway_client._tokens import TokenCache
from runway_client._transport import Transport
from runway_client.wire import download_scopes, load_scopes, read_scopes

logger = logging.getLogger("runway_client")

__all__ = [
    "WaitPlan",
    "check_token",
    "download_links",
    "fetch_outputs",
    "find_output_sets",
    "follow_up",
    "load_and_wait",
    "load_files",
    "load_with_plan",
    "output_set_query_for",
    "prepare_job",
    "resume",
    "resume_with_plan",
    "start_uploaded",
    "wait_for_outputs",
    "wait_plan",
    "wait_problems",
]


def prepare_job(
    *,
    partner_code: str,
    tenant_code: str,
    bundle_name: str,
    school_year: object,
    input_files: object,
    bundle_params: Mapping[str, str] | None = None,
) -> Result[JobSpec, RunwayError]:
    """Check everything local (files on disk, school year, names) and build the ``JobSpec``.

    The parameters are ``RunwayClient.load_files``'s (plus ``partner_code``), and
    the messages name them. All problems come back together in one
    ``InputError``, before any request.

    >>> prepare_job(partner_code="ea", tenant_code="ea", bundle_name="assessments/X",
    ...             school_year="2526", input_files={}, bundle_params={"API_YEAR": "26"}
    ...             ).failure().problems  # doctest: +NORMALIZE_WHITESPACE
    ('input_files is empty; give at least one file key and path',
     "bundle_params['API_YEAR'] is set by Runway from school_year; remove it")
    """
    files = check_input_files(input_files)
    spec = make_job_spec(
        partner_code=partner_code,
        tenant_code=tenant_code,
        bundle_name=bundle_name,
        school_year=school_year,
        files=files.value_or(()),
        bundle_params=bundle_params,
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


def _tokens(
    transport: Transport, config: RunwayConfig, token_source: TokenSource | None
) -> TokenSource:
    return token_source if token_source is not None else TokenCache(transport, config)


def load_files(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Load ``spec``: token -> job (``create_job``) -> uploaded (``upload``) -> receipt (``start``).

    ``token_source`` supplies the token (default: a ``TokenCache`` for this call,
    so one token request per load). Returns the ``LoadReceipt``, or the first
    step's ``RunwayError``; once a job exists the error names it, and once it may
    still be finished it carries ``pending`` (for ``resume``).

    ``cancel``: once set, no job is created, no further step begins and the
    uploads under way end at their next block; the result is then
    ``CancelledError``, carrying ``pending`` when the job exists (resume it
    later). ``on_progress`` hears the ``runway_client._events`` as they happen
    (from the upload threads too). The files go up to
    ``config.upload_concurrency`` at a time.

    Example (settings from ``RUNWAY_*``)::

        client = RunwayClient.from_env()
        transport, config = client.transport, client.config
        spec = prepare_job(partner_code=config.partner_code, tenant_code="ea",
                           bundle_name="assessments/PSAT_SAT", school_year="2526",
                           input_files={"INPUT_FILE": "examples/sat.csv"}).unwrap()
        receipt = load_files(transport, config, spec)      # Result[LoadReceipt, RunwayError]
    """
    tokens = _tokens(transport, config, token_source)
    scopes = load_scopes(spec.partner)
    # The files' hashing begins now, beside the token and the job's creation: the
    # first uploads' worth (the rest hash as they are sent).
    with HashAhead(
        spec.files[: config.upload_concurrency],
        sha256=config.upload_sha256,
        md5=config.verify_etag,
    ) as ahead:
        loaded = flow(
            with_token(
                tokens, scopes, partial(create_job, transport, config, spec=spec, cancel=cancel)
            ),
            bind(
                partial(
                    _upload_and_start,
                    transport,
                    config,
                    tokens,
                    (),
                    cancel,
                    on_progress,
                    ahead=ahead,
                )
            ),
        )
    return _told(on_progress, loaded)


def _upload_and_start(
    transport: Transport,
    config: RunwayConfig,
    tokens: TokenSource,
    done: tuple[UploadReceipt, ...],
    cancel: threading.Event | None,
    on_progress: OnProgress | None,
    job: Job,
    *,
    ahead: HashAhead | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """From a job that exists, never started: upload what is not ``done``, then start
    it, unless ``cancel`` is set between the two (``ahead``: the files' hashing, begun
    before the job existed)."""
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
        stopped = cancelled(None, step="upload", what="nothing uploaded")
        return Failure(resumable(PendingJob(job=job, receipts=done), stopped))
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
        ahead=ahead,
    )
    if not isinstance(uploaded, Success):
        return Failure(uploaded.failure())
    if _is_set(cancel):
        stopped = cancelled(None, step="start", what="the job was not started")
        pending = PendingJob(job=job, receipts=uploaded.unwrap().receipts)
        return Failure(resumable(pending, stopped))
    return _start_once(transport, config, tokens, uploaded.unwrap())


def _is_set(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()


def _told(
    on_progress: OnProgress | None, outcome: Result[LoadReceipt, RunwayError]
) -> Result[LoadReceipt, RunwayError]:
    """``outcome`` as it is, after telling ``on_progress`` how the load ended."""
    if on_progress is not None:
        if isinstance(outcome, Success):
            receipt = outcome.unwrap()
            on_progress(
                JobStarted(job_uid=receipt.job_uid, started_earlier=receipt.started_earlier)
            )
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


def _start_once(
    transport: Transport,
    config: RunwayConfig,
    tokens: TokenSource,
    uploaded: UploadedJob,
    *,
    may_have_run: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """Start ``uploaded``'s job so that it runs once: the one home of that rule.

    Runway runs a job again each time it is started after its run ended, and shows a
    job's runs only as the output sets of those that succeeded (CONTRACT.md, start and
    "Output sets"). So when a start of ours may have got through already
    (``may_have_run``, or an attempt here whose answer was lost: a network failure
    after sending, a timeout, a 5xx):

    - the job's output set is looked for first: found, the job ran: nothing is sent,
      and the receipt carries that set (``output_set``);
    - ``Job already in progress`` is that start's run, under way: started;
    - only otherwise is start sent, with a warning that an earlier start may have run.

    A start whose answer was lost is settled that way, per ``config.retry``. Whatever
    fails names the job and carries what is needed to resume it; a job found running
    that no start of ours may have begun is a ``RequestRejectedError``
    (``code == "job_already_started"``) with nothing to resume."""
    job = uploaded.job
    maybe_sent = may_have_run  # a start of ours may have reached Runway
    lost: RunwayError | None = None  # this call's start whose answer was lost
    unknown = False  # the run could not be looked for (after the look's own retries)

    def attempt(_number: int) -> Result[LoadReceipt, RunwayError]:
        nonlocal maybe_sent, lost, unknown
        if maybe_sent:
            looked = _output_set_of(transport, config, tokens, job)
            if not isinstance(looked, Success):  # not knowing, never start again
                unknown = True
                return Failure(_unsettled(lost, looked.failure()))
            earlier = looked.unwrap()
            if earlier is not None:
                logger.warning(
                    "job %s was started earlier and its run finished (output set %s): "
                    "it is not started again",
                    job.uid,
                    earlier.uid,
                )
                found = replace(receipt_for(uploaded), output_set=earlier, started_earlier=True)
                return Success(found)
        started = with_token(
            tokens,
            load_scopes(job.spec.partner),
            partial(start, transport, config, uploaded=uploaded),
        )
        if isinstance(started, Success):
            if maybe_sent:
                logger.warning(
                    "started job %s; had an earlier start of it got through, and its run "
                    "failed (no output set lists it), this is a second run",
                    job.uid,
                )
            return started
        error = started.failure()
        if maybe_sent and error.code == JOB_ALREADY_STARTED:
            logger.info("job %s is running: an earlier start of ours got through", job.uid)
            return Success(replace(receipt_for(uploaded), started_earlier=True))
        if _answer_lost(error):
            maybe_sent, lost = True, error
        return started

    outcome = retrying(attempt, lambda error: not unknown and _answer_lost(error), config.retry)
    return outcome.alt(partial(resumable, PendingJob(job=job, receipts=uploaded.receipts)))


def _unsettled(start_error: RunwayError | None, look_error: RunwayError) -> RunwayError:
    """The error of a start that may have got through, when its run could not be
    looked for: not started again (it would run twice), and kept to resume."""
    why = f"its output set could not be looked for ({look_error.message})"
    if start_error is None:  # an earlier call's start
        return look_error.replace(
            message=f"an earlier start of this job may have got through, and {why}: it "
            "is not started again until that is known; resume it later"
        )
    return start_error.replace(
        message=f"{start_error.message.rstrip('.')}; the start may have got through, and "
        f"{why}: it is not started again until that is known; resume it later"
    )


def _answer_lost(error: RunwayError) -> bool:
    """The start may have reached Runway, and no answer of its came back that says
    what Runway did: a network failure after sending, a 5xx, an unreadable answer."""
    if error.step != "start":
        return False
    if isinstance(error, NetworkError):
        return error.request_sent and error.code != "tls"
    return isinstance(error, ProtocolError) or (error.status is not None and error.status >= 500)


def _output_set_of(
    transport: Transport, config: RunwayConfig, tokens: TokenSource, job: Job
) -> Result[OutputSet | None, RunwayError]:
    """The output set of a run of ``job``, or ``None`` when Runway lists none or
    refuses to be asked (a token without ``read:jobs``: said as a warning). Any other
    failure to ask (after ``list_output_sets``' own retries) is the ``Failure``."""
    spec = job.spec
    query = OutputSetQuery(
        partner=spec.partner,
        tenant=spec.tenant,
        bundle=spec.bundle,
        school_year=spec.school_year,
        created_after=job.created_at - timedelta(seconds=CLOCK_SKEW_SECONDS),
    )
    found = with_token(
        tokens, read_scopes(spec.partner), partial(list_output_sets, transport, config, query=query)
    )
    if isinstance(found, Success):
        return Success(next((s for s in found.unwrap() if s.job_uid == job.uid), None))
    error = found.failure()
    if isinstance(error, PermissionDeniedError | AuthenticationError):
        logger.warning(
            "could not look for an output set of job %s, to learn whether an earlier start "
            "of it ran (%s); going on without it",
            job.uid,
            error,
        )
        return Success(None)
    return Failure(error.for_job(job.uid))


def start_uploaded(
    transport: Transport,
    config: RunwayConfig,
    uploaded: UploadedJob,
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    may_have_run: bool = False,
) -> Result[LoadReceipt, RunwayError]:
    """Start a job this client created and uploaded (``client.start_job``, a batch's
    fresh job), so that it runs once (``may_have_run``: a start of ours may have got
    through already; see ``_start_once``). A failure names the job and carries
    ``pending`` (for ``resume``); ``cancel`` set: nothing is sent.

    Example::

        receipt = start_uploaded(transport, config, uploaded).unwrap()
    """
    tokens = _tokens(transport, config, token_source)
    if _is_set(cancel):
        stopped = cancelled(None, step="start", what="the job was not started")
        pending = PendingJob(job=uploaded.job, receipts=uploaded.receipts)
        return _told(on_progress, Failure(resumable(pending, stopped)))
    started = _start_once(transport, config, tokens, uploaded, may_have_run=may_have_run)
    return _told(on_progress, started)


def resume(
    transport: Transport,
    config: RunwayConfig,
    pending: PendingJob,
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Finish a job that was created and is not known to be started: upload what is
    missing, start it, so that it runs once.

    A start of it may have got through already (its answer lost; or ``pending`` is
    older than the job: a job file resumed twice), and Runway runs a job again when it
    is started after its run ended (CONTRACT.md, start). So, in this order: the job's
    output set is looked for (found: the job ran; nothing is sent, the receipt carries
    the set); start is asked for (202, or ``Job already in progress``: started); and
    only when Runway answers that files are missing, which proves no run began, are
    the missing files uploaded and the job started. Nothing is ever uploaded over the
    inputs of a job that may be running.

    ``cancel`` and ``on_progress`` work as in ``load_files`` (a cancelled resume
    carries ``pending`` again). ``pending`` comes from a failed load's
    ``error.pending`` (or ``PendingJob.from_json``). Each missing file is checked
    again (the size and SHA-256 it had when the job was made: another file is
    refused with ``InputChangedError``); no new job is ever created. Upload URLs
    expire an hour after the job was created: then this fails with an
    ``UploadExpiredError`` saying a new load is needed.

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
    tokens = _tokens(transport, config, token_source)
    if _is_set(cancel):
        stopped = cancelled(None, step="start", what="nothing done")
        return Failure(resumable(pending, stopped))
    # Each file not uploaded is checked to be the one the job was created with, before
    # anything is sent: no job is started on an object this client did not vouch for.
    done = {receipt.key for receipt in pending.receipts}
    for source in pending.job.spec.files:
        if source.key not in done:
            same = same_as_when_created(source)
            if not isinstance(same, Success):
                return _told(on_progress, Failure(resumable(pending, same.failure())))
    known = UploadedJob(job=pending.job, receipts=pending.receipts)
    probe = _start_once(transport, config, tokens, known, may_have_run=True)
    if isinstance(probe, Success) or probe.failure().code != FILES_MISSING:
        return _told(on_progress, probe)
    # Runway says files are missing: no run began. Upload the missing ones, then start.
    finished = _upload_and_start(
        transport, config, tokens, pending.receipts, cancel, on_progress, pending.job
    )
    return _told(on_progress, finished)


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


def wait_problems(
    timeout: object, poll_interval: object, *, timeout_name: str = "timeout"
) -> list[str]:
    """What is wrong with a wait's ``timeout`` (0 to 7 days) and ``poll_interval``
    (0.01 s to 1 day), in seconds; an empty list when nothing is.

    >>> wait_problems(60, 0)
    ['poll_interval must be a number of seconds from 0.01 to 86400, got 0']
    """
    problems = []
    for name, value, low, high in (
        (timeout_name, timeout, 0.0, MAX_WAIT_SECONDS),
        ("poll_interval", poll_interval, MIN_POLL_SECONDS, MAX_POLL_SECONDS),
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
    The token is asked for once and reused while it lives. ``cancel`` ends the
    wait (``CancelledError`` naming the job); ``on_progress`` hears a
    ``StillWaiting`` heartbeat after each look that found nothing.

    Example::

        output_set = wait_for_outputs(transport, config, receipt.job_uid, timeout=600).unwrap()
        print(output_set.files)   # ('studentAssessments.jsonl', ...)
    """
    problems = wait_problems(timeout, poll_interval)
    if not is_job_uid(job_uid):
        problems.append(f"job_uid must be a job's uid (a UUID), got {str(job_uid)[:80]!r}")
    if problems:
        return Failure(InputError.of(problems))
    tokens = _tokens(transport, config, token_source)
    wanted = query or OutputSetQuery(partner=config.partner_code)
    look = partial(find_output_sets, transport, config, wanted, token_source=tokens)
    began = clock()
    deadline = began + timeout
    looks = 0  # early looks come quickly (0.5 s, 1 s, 2 s ...) up to poll_interval
    while True:
        listed = look()
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
                stopped = cancelled(None, step="wait_for_outputs", what="the wait ended")
                return Failure(stopped.for_job(job_uid))
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
    tokens = _tokens(transport, config, token_source)
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
    """``error`` told as what it is: a failure after a successful load (nothing to resume)."""
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
    return error.replace(
        message=f"{error.message.rstrip('.')}. {news}", job_uid=receipt.job_uid, pending=None
    )


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
    tokens = _tokens(transport, config, token_source)
    if dest_dir is not None:
        usable = check_destination(dest_dir)
        if not isinstance(usable, Success):
            return Failure(usable.failure())
    loaded = load_files(
        transport, config, spec, token_source=tokens, cancel=cancel, on_progress=on_progress
    )
    return loaded.bind(
        partial(
            follow_up,
            transport,
            config,
            timeout=timeout,
            poll_interval=poll_interval,
            dest_dir=dest_dir,
            overwrite=overwrite,
            token_source=tokens,
            cancel=cancel,
            on_progress=on_progress,
        )
    )


# ---------------------------------------------------------------- the read side


def check_token(
    transport: Transport, config: RunwayConfig, *, token_source: TokenSource | None = None
) -> Result[tuple[str, ...], RunwayError]:
    """The partner codes this client's load token is valid for (``verify_token``)."""
    return with_token(
        _tokens(transport, config, token_source),
        load_scopes(config.partner_code),
        partial(verify_token, transport, config),
    )


def find_output_sets(
    transport: Transport,
    config: RunwayConfig,
    query: OutputSetQuery,
    *,
    token_source: TokenSource | None = None,
) -> Result[tuple[OutputSet, ...], RunwayError]:
    """The output sets matching ``query``, oldest first (``list_output_sets`` with a token)."""
    return with_token(
        _tokens(transport, config, token_source),
        read_scopes(query.partner),
        partial(list_output_sets, transport, config, query=query),
    )


def download_links(
    transport: Transport,
    config: RunwayConfig,
    output_set: OutputSet | str,
    *,
    token_source: TokenSource | None = None,
) -> Result[DownloadLinks, RunwayError]:
    """Presigned GET URLs for each file of ``output_set`` (or its uid), valid up to 1 hour."""
    return with_token(
        _tokens(transport, config, token_source),
        download_scopes(_partner_of(output_set, config)),
        partial(get_download_links, transport, config, output_set=output_set),
    )


def fetch_outputs(
    transport: Transport,
    config: RunwayConfig,
    output_set: OutputSet | str,
    dest_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    token_source: TokenSource | None = None,
) -> Result[tuple[DownloadReceipt, ...], RunwayError]:
    """Download every file of ``output_set`` (or its uid) into ``dest_dir`` with a
    download-scoped token; one ``DownloadReceipt`` per file (see ``download``).

    Example::

        saved = fetch_outputs(transport, config, output_set, "outputs/").unwrap()
    """
    return with_token(
        _tokens(transport, config, token_source),
        download_scopes(_partner_of(output_set, config)),
        partial(
            download,
            transport,
            config,
            output_set=output_set,
            dest_dir=dest_dir,
            overwrite=overwrite,
        ),
    )


def _partner_of(output_set: OutputSet | str, config: RunwayConfig) -> str:
    return output_set.partner if isinstance(output_set, OutputSet) else config.partner_code


# ---------------------------------------------------------------- plans the shell asks for


class WaitPlan(NamedTuple):
    """What to do after a load: wait ``timeout`` seconds (``None``: do not wait)
    for the output set, polling at most every ``poll_interval`` seconds, then
    download into ``dest_dir`` if given."""

    timeout: float | None
    poll_interval: float
    dest_dir: str | os.PathLike[str] | None = None


def wait_plan(
    wait: object, poll_interval: object, dest_dir: str | os.PathLike[str] | None = None
) -> Result[WaitPlan, RunwayError]:
    """Read ``RunwayClient.load_files``'s ``wait`` (``False``, ``True`` for an hour,
    or seconds), ``poll_interval`` and ``download_to`` (which implies a wait).

    >>> wait_plan(True, 15).unwrap().timeout
    3600.0
    """
    if wait is True or (wait is False and dest_dir is not None):
        seconds: object = DEFAULT_WAIT_SECONDS
    elif wait is False:
        seconds = None
    else:
        seconds = wait
    problems = wait_problems(
        0.0 if seconds is None else seconds, poll_interval, timeout_name="wait"
    )
    if problems or not isinstance(poll_interval, int | float):
        return Failure(InputError.of(problems))
    timeout = float(seconds) if isinstance(seconds, int | float) else None
    return Success(WaitPlan(timeout, float(poll_interval), dest_dir))


def load_with_plan(
    transport: Transport,
    config: RunwayConfig,
    spec: Result[JobSpec, RunwayError],
    plan: Result[WaitPlan, RunwayError],
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """``load_files`` (then ``follow_up`` as ``plan`` says); the problems of ``spec``
    and ``plan`` are reported together, before any request."""
    if isinstance(spec, Failure) or isinstance(plan, Failure):
        return Failure(InputError.of([*_failed(spec), *_failed(plan)]))
    timeout, poll_interval, dest_dir = plan.unwrap()
    if timeout is None:
        return load_files(
            transport,
            config,
            spec.unwrap(),
            token_source=token_source,
            cancel=cancel,
            on_progress=on_progress,
        )
    return load_and_wait(
        transport,
        config,
        spec.unwrap(),
        timeout=timeout,
        poll_interval=poll_interval,
        dest_dir=dest_dir,
        token_source=token_source,
        cancel=cancel,
        on_progress=on_progress,
    )


def _failed(outcome: Result[object, RunwayError]) -> tuple[str, ...]:
    return _problems(outcome.failure()) if isinstance(outcome, Failure) else ()


def resume_with_plan(
    transport: Transport,
    config: RunwayConfig,
    pending: PendingJob | str | os.PathLike[str],
    plan: Result[WaitPlan, RunwayError],
    *,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """``resume`` a ``PendingJob`` or the file its ``to_json()`` was saved to (what
    ``runway-client`` writes), then ``follow_up`` as ``plan`` says."""
    if isinstance(pending, PendingJob):
        loaded: Result[PendingJob, RunwayError] = Success(pending)
    elif isinstance(pending, str | os.PathLike):
        loaded = read_small(pending).bind(PendingJob.from_json)
    else:
        loaded = Failure(
            InputError.of(
                [
                    "resume takes a PendingJob (a failed load's error.pending) or the path of "
                    f"the file it was saved to, got {type(pending).__name__}"
                ]
            )
        )
    if isinstance(plan, Failure):
        return Failure(InputError.of([*_failed(plan), *_failed(loaded)]))
    tokens = _tokens(transport, config, token_source)
    timeout, poll_interval, dest_dir = plan.unwrap()
    resumed = loaded.bind(
        partial(
            resume,
            transport,
            config,
            token_source=tokens,
            cancel=cancel,
            on_progress=on_progress,
        )
    )
    if timeout is None:
        return resumed
    return resumed.bind(
        partial(
            follow_up,
            transport,
            config,
            timeout=timeout,
            poll_interval=poll_interval,
            dest_dir=dest_dir,
            token_source=tokens,
            cancel=cancel,
            on_progress=on_progress,
        )
    )
