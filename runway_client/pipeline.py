"""Flows composed from the steps.

- ``prepare_job``: every local check, before anything is sent;
- ``load_files``: authorize -> create_job -> upload -> start;
- ``resume``: finish a job created but not started (``error.pending``);
- ``wait_for_outputs``: poll output sets until the job's appears;
- ``load_and_wait``, ``fetch_outputs``, ``load_wait_download``: the above chained.

Written in ``Result.do`` notation: the first ``Failure`` ends a flow and is
returned as it is. A custom flow is another composition of the same steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Final

from msgspec.structs import replace
from returns.result import Failure, Result, Success

from runway_client.config import RunwayConfig
from runway_client.errors import InputError, OutputsNotReadyError, ProtocolError, RunwayError
from runway_client.files import check_input_files, prepare_destination
from runway_client.models import (
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
    make_job_spec,
)
from runway_client.steps import (
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
from runway_client.transport import Transport
from runway_client.wire import download_scopes, load_scopes, read_scopes

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "TokenSource",
    "fetch_outputs",
    "load_and_wait",
    "load_files",
    "load_wait_download",
    "output_set_query_for",
    "prepare_job",
    "resume",
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
) -> Result[LoadReceipt, RunwayError]:
    """Load ``spec``: authorize, create the job, upload every file, start it.

    ``token_source`` supplies the token (``RunwayClient`` passes its cache);
    by default a fresh one is fetched with ``authorize``. Returns the
    ``LoadReceipt``, or the first step's ``RunwayError`` (naming the job once
    one exists).
    """
    tokens = token_source or Authorizer(transport, config)
    scopes = load_scopes(config.partner_code)
    return Result.do(
        receipt
        for job in with_token(tokens, scopes, partial(_create, transport, config, spec))
        for uploaded in upload(transport, job, policy=config.retry)
        for receipt in with_token(tokens, scopes, partial(_start, transport, config, uploaded))
    )


def resume(
    transport: Transport,
    config: RunwayConfig,
    pending: PendingJob,
    *,
    token_source: TokenSource | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Finish a job that was created but not started: upload what is missing, start it.

    ``pending`` comes from a failed load's ``error.pending`` (or
    ``PendingJob.from_json``). Each missing file is checked again (same size as
    when the job was made); no new job is ever created. If the job turns out
    to be started already (an earlier start got through), that is success. Upload
    URLs expire an hour after the job was created: then this fails with a
    ``StorageError`` saying a new load is needed.
    """
    tokens = token_source or Authorizer(transport, config)
    scopes = load_scopes(pending.job.spec.partner)
    return Result.do(
        receipt
        for uploaded in upload(transport, pending.job, policy=config.retry, done=pending.receipts)
        for receipt in with_token(
            tokens, scopes, partial(_start_or_started, transport, config, uploaded)
        )
    )


def _create(
    transport: Transport, config: RunwayConfig, spec: JobSpec, token: Token
) -> Result[Job, RunwayError]:
    return create_job(transport, config, token, spec)


def _start(
    transport: Transport, config: RunwayConfig, uploaded: UploadedJob, token: Token
) -> Result[LoadReceipt, RunwayError]:
    return start(transport, config, token, uploaded)


def _start_or_started(
    transport: Transport, config: RunwayConfig, uploaded: UploadedJob, token: Token
) -> Result[LoadReceipt, RunwayError]:
    started = start(transport, config, token, uploaded)
    if isinstance(started, Failure) and already_started(started.failure()):
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
) -> Result[OutputSet, RunwayError]:
    """Poll ``GET /output-sets`` until one with ``jobUid == job_uid`` appears.

    The API has no job-status endpoint: a run's success shows only as an output
    set (CONTRACT.md, "Output sets"). ``timeout`` and ``poll_interval`` are
    seconds; ``query`` narrows the listing (default: the partner's sets). After
    ``timeout``, ``OutputsNotReadyError`` says the run may still be running or
    may have failed, and where to look. A failed listing ends the wait at once.
    """
    problems = wait_problems(timeout, poll_interval)
    if problems:
        return Failure(InputError.of(problems))
    tokens = token_source or Authorizer(transport, config)
    wanted = query or OutputSetQuery(partner=config.partner_code)
    deadline = clock() + timeout
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
                    "(failed runs produce none). See the job in the Runway UI, or wait longer",
                    step="wait_for_outputs",
                    job_uid=job_uid,
                )
            )
        sleep(max(0.0, min(poll_interval, remaining)))


def load_and_wait(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    *,
    timeout: float = DEFAULT_WAIT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    token_source: TokenSource | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """``load_files``, then ``wait_for_outputs``: the receipt carries its ``output_set``."""
    tokens = token_source or Authorizer(transport, config)
    return Result.do(
        replace(receipt, output_set=output_set)
        for receipt in load_files(transport, config, spec, token_source=tokens)
        for output_set in wait_for_outputs(
            transport,
            config,
            receipt.job_uid,
            query=output_set_query_for(receipt),
            timeout=timeout,
            poll_interval=poll_interval,
            token_source=tokens,
        )
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
    """Download every file of ``output_set`` into ``dest_dir`` with a download-scoped token."""
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


def load_wait_download(
    transport: Transport,
    config: RunwayConfig,
    spec: JobSpec,
    dest_dir: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_WAIT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    overwrite: bool = False,
    token_source: TokenSource | None = None,
) -> Result[LoadReceipt, RunwayError]:
    """Load, wait for the run's output set, download it: the receipt has all three.

    The destination folder is checked (and created) before the job is created.
    """
    tokens = token_source or Authorizer(transport, config)
    folder = prepare_destination(dest_dir)
    if not isinstance(folder, Success):
        return Failure(folder.failure())
    return Result.do(
        replace(waited, downloads=receipts)
        for waited in load_and_wait(
            transport,
            config,
            spec,
            timeout=timeout,
            poll_interval=poll_interval,
            token_source=tokens,
        )
        for receipts in _fetch_for(transport, config, waited, folder.unwrap(), overwrite, tokens)
    )


def _fetch_for(
    transport: Transport,
    config: RunwayConfig,
    receipt: LoadReceipt,
    folder: Path,
    overwrite: bool,
    tokens: TokenSource,
) -> Result[tuple[DownloadReceipt, ...], RunwayError]:
    if receipt.output_set is None:  # pragma: no cover - load_and_wait always sets it
        return Failure(ProtocolError("no output set to download", step="download"))
    fetched = fetch_outputs(
        transport, config, receipt.output_set, folder, overwrite=overwrite, token_source=tokens
    )
    return fetched.alt(partial(_name_job, receipt.job_uid))


def _name_job(job_uid: str, error: RunwayError) -> RunwayError:
    return error.for_job(job_uid)
