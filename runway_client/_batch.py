"""``load_many``: many loads from a manifest, journaled so that any rerun is safe.

::

    read_manifest(path)                         -> Manifest            (YAML, pure checks)
    plan_batch(config, manifest)                -> BatchPlan           (files checked, hashed)
    load_many(transport, config, plan, journal) -> BatchReport

Each planned entry is identified by its content (``entry_identity``: the instance,
the spec, and each file's name, size and SHA-256): an edited file is a new entry,
an unchanged one is never loaded twice. Per entry the journal decides
(``Journal.next_action``): a started entry is skipped; a created one is finished
with ``resume`` (no new job); anything else gets a new job: ``create_job``, then
``upload`` (the job's files in parallel; each receipt's bytes and SHA-256 must be
the planned ones), then the start (a job runs once: ``_pipeline._start_once``).
Each step is written to the journal around it, so the run can be killed
at any instant and rerun (``runway_client._journal`` holds the invariant: exactly
one started job per entry).

``concurrency`` entries run at once on threads sharing one token source and the
transport's connection pool. ``cancel`` (a ``threading.Event``) is passed down to
every step: once set, no new job is created, uploads under way end at their next
block, and entries not reached are reported ``not_run``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Final, Literal, NamedTuple

import msgspec
from returns.result import Failure, Result, Success

from runway_client._config import RunwayConfig
from runway_client._defaults import MAX_BATCH_CONCURRENCY
from runway_client._errors import (
    CancelledError,
    InputChangedError,
    InputError,
    NotFoundError,
    OutcomeUnknownError,
    RunwayError,
)
from runway_client._events import JobCreated, LoadFailed, OnProgress, ProgressEvent
from runway_client._files import existing_file, read_small
from runway_client._journal import FileRecord, Journal, Orphan, Resume, Skip
from runway_client._manifest import LoadEntry, Manifest, manifest_from, parse_manifest
from runway_client._models import Job, JobSpec, PendingJob, Token, UploadedJob, UploadReceipt
from runway_client._pipeline import prepare_job, resume, start_uploaded
from runway_client._steps import TokenSource, create_job, upload, with_token
from runway_client._tokens import TokenCache
from runway_client._transport import Transport
from runway_client.wire import is_forbidden, load_scopes

__all__ = [
    "BatchEntry",
    "BatchPlan",
    "BatchReport",
    "BatchResults",
    "EntryOutcome",
    "Invalid",
    "default_journal_path",
    "entry_identity",
    "load_many",
    "plan_batch",
    "read_manifest",
    "run_batch",
]

OutcomeState = Literal["started", "skipped", "failed", "cancelled", "invalid", "not_run"]

MAX_CONCURRENCY: Final = MAX_BATCH_CONCURRENCY
"""The most loads ``load_many`` runs at once."""


class BatchEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One checked load of a batch: its spec, its files' fingerprints and its identity."""

    index: int
    label: str
    entry_id: str
    spec: JobSpec
    files: tuple[FileRecord, ...]


class Invalid(msgspec.Struct, frozen=True, kw_only=True):
    """An entry that failed its checks: ``problems`` each name ``loads[i].field``."""

    index: int
    label: str
    tenant: str
    bundle: str
    problems: tuple[str, ...]


class BatchPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The checked entries of a manifest, and the ones that failed their checks."""

    entries: tuple[BatchEntry, ...]
    invalid: tuple[Invalid, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """Every problem of every invalid entry, in order."""
        return tuple(p for bad in self.invalid for p in bad.problems)


class EntryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one entry came to in a run (one record of the results file).

    ``state``: ``started`` (by this run), ``skipped`` (started by an earlier run),
    ``failed`` (``step``, ``error_kind``, ``error``; a rerun retries it, resuming
    its job if one was created), ``cancelled`` (stopped midway by ``cancel``; a
    created job is named and finished by the next run), ``invalid`` (failed its
    checks; not sent), or ``not_run`` (the run was cancelled before it).
    """

    index: int
    label: str
    entry_id: str | None
    tenant: str
    bundle: str
    school_year: str | None
    state: OutcomeState
    job_uid: str | None = None
    step: str | None = None
    error_kind: str | None = None
    error: str | None = None
    exit_code: int | None = None
    files: tuple[FileRecord, ...] = ()


class BatchReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a ``load_many`` run: one ``EntryOutcome`` per manifest entry, in
    order, and the jobs that may exist on Runway but will never be started."""

    outcomes: tuple[EntryOutcome, ...]
    possible_orphans: tuple[Orphan, ...] = ()

    def count(self, state: OutcomeState) -> int:
        """How many entries ended in ``state``."""
        return sum(o.state == state for o in self.outcomes)

    @property
    def all_started(self) -> bool:
        """Every entry has its started job (by this run or an earlier one)."""
        return all(o.state in ("started", "skipped") for o in self.outcomes)

    @property
    def nothing_to_do(self) -> bool:
        """Every entry was started by an earlier run: this run did nothing."""
        return bool(self.outcomes) and all(o.state == "skipped" for o in self.outcomes)


def read_manifest(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Result[Manifest, RunwayError]:
    """Read and check the manifest at ``path`` (relative paths inside are relative to
    its folder; ``${NAME}`` comes from ``environ``, default ``os.environ``)."""
    text = read_small(path).bind(_text)
    folder = str(Path(os.fspath(path)).resolve().parent)
    return text.bind(
        partial(parse_manifest, base_dir=folder, environ=os.environ if environ is None else environ)
    )


def _text(data: bytes) -> Result[str, RunwayError]:
    try:
        return Success(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Failure(InputError.of([f"manifest: not UTF-8 text ({exc.reason})"]))


def default_journal_path(manifest_path: str | os.PathLike[str]) -> Path:
    """Where a manifest's journal goes unless told: beside it, ``<name>.journal``.

    >>> str(default_journal_path("/srv/loads/fall.yaml"))
    '/srv/loads/fall.yaml.journal'
    """
    path = Path(os.fspath(manifest_path))
    return path.with_name(path.name + ".journal")


def entry_identity(config: RunwayConfig, spec: JobSpec, files: Sequence[FileRecord]) -> str:
    """The content identity of a load (hex SHA-256): the instance, partner, tenant,
    bundle, school year, params, and each file's key, name, size and SHA-256.

    The local path is not part of it: the same bytes moved elsewhere are the same load.
    """
    canonical = msgspec.json.encode(
        {
            "instance": config.runway_base_url,
            "partner": spec.partner,
            "tenant": spec.tenant,
            "bundle": spec.bundle,
            "school_year": spec.school_year.wire,
            "params": sorted(spec.params.items()),
            "files": sorted((f.key, f.name, f.bytes, f.sha256) for f in files),
        }
    )
    return hashlib.sha256(canonical).hexdigest()


def plan_batch(
    config: RunwayConfig, manifest: Manifest | Sequence[Mapping[str, object]]
) -> BatchPlan:
    """Check every entry as ``prepare_job`` does (files on disk, school year, names),
    fingerprint its files (size, SHA-256) and give it its identity.

    ``manifest`` may also be a list of loads written in Python (the manifest's
    ``loads:``; relative paths are then relative to the working directory). Problems
    are prefixed with the entry's name, ``loads[i]``. Two entries with the same
    content are one load: the second is invalid.
    """
    if isinstance(manifest, Manifest):
        checked: Result[Manifest, RunwayError] = Success(manifest)
    else:
        checked = manifest_from({"loads": list(manifest)}, base_dir=os.getcwd(), environ={})
    if not isinstance(checked, Success):
        error = checked.failure()
        return BatchPlan(
            entries=(),
            invalid=(
                Invalid(index=-1, label="loads", tenant="", bundle="", problems=error.problems),
            ),
        )
    entries: list[BatchEntry] = []
    invalid: list[Invalid] = []
    seen: dict[str, str] = {}
    for load in checked.unwrap().loads:
        planned = _plan_entry(config, load)
        if isinstance(planned, Invalid):
            invalid.append(planned)
        elif planned.entry_id in seen:
            invalid.append(
                _invalid(
                    load,
                    [
                        f"{load.label} is the same load as {seen[planned.entry_id]} (same spec "
                        "and file contents): remove one"
                    ],
                )
            )
        else:
            seen[planned.entry_id] = load.label
            entries.append(planned)
    return BatchPlan(entries=tuple(entries), invalid=tuple(invalid))


def _invalid(load: LoadEntry, problems: Sequence[str]) -> Invalid:
    return Invalid(
        index=load.index,
        label=load.label,
        tenant=load.tenant_code,
        bundle=load.bundle_name,
        problems=tuple(problems),
    )


def _plan_entry(config: RunwayConfig, load: LoadEntry) -> BatchEntry | Invalid:
    spec = prepare_job(
        partner_code=config.partner_code,
        tenant_code=load.tenant_code,
        bundle_name=load.bundle_name,
        school_year=load.school_year,
        input_files=load.input_files,
        bundle_params=load.bundle_params,
    )
    if not isinstance(spec, Success) or load.problems:
        error = spec.failure() if isinstance(spec, Failure) else None
        found = (error.problems or (error.message,)) if error is not None else ()
        more = [f"{load.label}.{p}" for p in found if not p.startswith(load.bad_fields)]
        return _invalid(load, [*load.problems, *more])
    files: list[FileRecord] = []
    for item in spec.unwrap().files:
        found = existing_file(Path(item.path))
        if found is None or found[0] != item.size:
            return _invalid(
                load, [f"{load.label}.input_files[{item.key!r}] changed while being read"]
            )
        files.append(
            FileRecord(
                key=item.key, path=item.path, name=item.name, bytes=found[0], sha256=found[1]
            )
        )
    return BatchEntry(
        index=load.index,
        label=load.label,
        entry_id=entry_identity(config, spec.unwrap(), files),
        spec=spec.unwrap(),
        files=tuple(files),
    )


def load_many(
    transport: Transport,
    config: RunwayConfig,
    plan: BatchPlan,
    journal: Journal,
    *,
    concurrency: int = 1,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> BatchReport:
    """Run every entry of ``plan`` (``concurrency`` at once, 1 to ``MAX_CONCURRENCY``),
    journaled in ``journal``; returns the ``BatchReport`` (never raises for a failed
    entry: each outcome carries its error). Invalid entries are reported, not sent.

    ``token_source`` is shared by every thread (``RunwayClient`` passes its cache).
    ``cancel``: once set, no job is created and no step begins; entries not reached
    are ``not_run``, those stopped midway ``cancelled`` (a created job stays in the
    journal, and the next run finishes it). ``on_progress`` hears every entry's
    ``runway_client._events`` (from several threads at once: it must be thread-safe).
    A ``KeyboardInterrupt`` in the caller sets ``cancel`` for the threads, which stop
    between steps, and is raised again once they have.
    """
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not (1 <= concurrency <= MAX_CONCURRENCY)
    ):
        raise ValueError(f"concurrency must be an int from 1 to {MAX_CONCURRENCY}")
    tokens = token_source or TokenCache(transport, config)
    for entry in plan.entries:
        journal.plan(
            entry.entry_id,
            label=entry.label,
            tenant=entry.spec.tenant,
            bundle=entry.spec.bundle,
            school_year=entry.spec.school_year.wire,
            files=entry.files,
        )
    halt = cancel if cancel is not None else threading.Event()
    run = partial(_run_entry, _Run(transport, config, journal, tokens, halt, on_progress))
    if concurrency == 1 or len(plan.entries) <= 1:
        done = [run(entry) for entry in plan.entries]
    else:
        pool = ThreadPoolExecutor(concurrency, thread_name_prefix="runway-batch")
        try:
            done = list(pool.map(run, plan.entries))
        except BaseException:  # Ctrl-C in the caller: let the threads stop between steps
            halt.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    outcomes = sorted([*done, *invalid_outcomes(plan)], key=lambda o: o.index)
    return BatchReport(outcomes=tuple(outcomes), possible_orphans=journal.possible_orphans())


class _Run(NamedTuple):
    """What every entry of one ``load_many`` run shares."""

    transport: Transport
    config: RunwayConfig
    journal: Journal
    tokens: TokenSource
    cancel: threading.Event
    on_progress: OnProgress | None


def invalid_outcomes(plan: BatchPlan) -> tuple[EntryOutcome, ...]:
    """The report rows of ``plan``'s entries that failed their local checks (state ``invalid``)."""
    return tuple(
        EntryOutcome(
            index=bad.index,
            label=bad.label,
            entry_id=None,
            tenant=bad.tenant,
            bundle=bad.bundle,
            school_year=None,
            state="invalid",
            step="input",
            error_kind=InputError.kind,
            error="; ".join(bad.problems),
            exit_code=InputError.exit_code,
        )
        for bad in plan.invalid
    )


def _outcome(
    entry: BatchEntry,
    state: OutcomeState,
    *,
    job_uid: str | None = None,
    error: RunwayError | None = None,
) -> EntryOutcome:
    if isinstance(error, CancelledError):
        state = "cancelled"
    return EntryOutcome(
        index=entry.index,
        label=entry.label,
        entry_id=entry.entry_id,
        tenant=entry.spec.tenant,
        bundle=entry.spec.bundle,
        school_year=entry.spec.school_year.wire,
        state=state,
        job_uid=job_uid if job_uid is not None else (error.job_uid if error else None),
        step=error.step if error else None,
        error_kind=error.kind if error else None,
        error=" ".join(str(error).split()) if error else None,
        exit_code=error.exit_code if error else None,
        files=entry.files,
    )


def _run_entry(run: _Run, entry: BatchEntry) -> EntryOutcome:
    if run.cancel.is_set():
        return _outcome(entry, "not_run")
    action = run.journal.next_action(entry.entry_id)
    if isinstance(action, Skip):
        return _outcome(entry, "skipped", job_uid=action.job_uid)
    if isinstance(action, Resume):
        resumed, abandoned = _finish(run, entry, action.job_id, action.pending)
        if not abandoned or run.cancel.is_set():
            return resumed
    return _create_and_finish(run, entry)


def _create_and_finish(run: _Run, entry: BatchEntry) -> EntryOutcome:
    journal, config = run.journal, run.config
    if run.cancel.is_set():  # the last moment before a job would exist
        return _outcome(entry, "not_run")
    attempt = journal.begin_creating(entry.entry_id)
    if not isinstance(attempt, Success):  # the invariant's guard: a bug if ever seen
        return _outcome(entry, "failed", error=attempt.failure())
    job_id = attempt.unwrap()
    made = with_token(
        run.tokens,
        load_scopes(config.partner_code),
        partial(_create, run.transport, config, entry.spec),
    )
    if not isinstance(made, Success):
        error = made.failure()
        journal.create_failed(job_id, error, maybe_created=_maybe_created(error))
        _tell(run, LoadFailed(job_uid=None, kind=error.kind, step=error.step, message=str(error)))
        return _outcome(entry, "failed", error=error)
    job = made.unwrap()
    journal.created(job_id, job)
    _tell(
        run,
        JobCreated(
            job_uid=job.uid,
            tenant=job.spec.tenant,
            bundle=job.spec.bundle,
            files={source.key: source.size for source in job.spec.files},
            total_bytes=sum(source.size for source in job.spec.files),
        ),
    )
    planned = {item.key: item for item in entry.files}

    def journal_receipt(receipt: UploadReceipt) -> None:
        # Each file as it is done, so a kill mid-job leaves only the rest to upload;
        # bytes other than the planned ones are never journaled (never started on).
        if isinstance(_same_bytes(planned[receipt.key], receipt), Success):
            journal.uploaded(job_id, receipt)

    uploaded = upload(
        run.transport,
        job,
        policy=config.retry,
        concurrency=config.upload_concurrency,
        cancel=run.cancel,
        on_progress=run.on_progress,
        sha256=config.upload_sha256,
        verify_etag=config.verify_etag,
        on_uploaded=journal_receipt,
    )
    if isinstance(uploaded, Success):
        receipts = uploaded.unwrap().receipts
    else:
        so_far = uploaded.failure().pending
        receipts = so_far.receipts if so_far is not None else ()
    changed = [_same_bytes(planned[r.key], r) for r in receipts]
    problem = next((c.failure() for c in changed if isinstance(c, Failure)), None)
    if problem is None and not isinstance(uploaded, Success):
        problem = uploaded.failure()
    if problem is not None:
        error = problem.for_job(job.uid)
        if _unfinishable(error) or isinstance(error, InputError | InputChangedError):
            journal.abandoned(job_id, error)
        else:
            journal.failed(entry.entry_id, error)
        _tell(
            run, LoadFailed(job_uid=job.uid, kind=error.kind, step=error.step, message=str(error))
        )
        return _outcome(entry, "failed", error=error)
    finished, _abandoned = _finish(
        run, entry, job_id, PendingJob(job=job, receipts=receipts), fresh=True
    )
    return finished  # abandoned or not, a fresh job's failure is this run's answer


def _tell(run: _Run, event: ProgressEvent) -> None:
    if run.on_progress is not None:
        run.on_progress(event)


def _finish(
    run: _Run, entry: BatchEntry, job_id: int, pending: PendingJob, *, fresh: bool = False
) -> tuple[EntryOutcome, bool]:
    """Start the job so that it runs once: a ``fresh`` one (uploaded by this run, never
    started) directly, else by ``resume`` (an earlier run may have started it). Also
    says whether the job was abandoned: it can never be started (then a new job may be
    made for the entry)."""
    if fresh:
        uploaded = UploadedJob(job=pending.job, receipts=pending.receipts)
        done = start_uploaded(
            run.transport,
            run.config,
            uploaded,
            token_source=run.tokens,
            cancel=run.cancel,
            on_progress=run.on_progress,
        )
    else:
        done = resume(
            run.transport,
            run.config,
            pending,
            token_source=run.tokens,
            cancel=run.cancel,
            on_progress=run.on_progress,
        )
    if isinstance(done, Success):
        run.journal.started(job_id)
        return _outcome(entry, "started", job_uid=done.unwrap().job_uid), False
    error = done.failure()
    if _unfinishable(error) and error.pending is None:
        run.journal.abandoned(job_id, error)
        return _outcome(entry, "failed", error=error), True
    run.journal.failed(entry.entry_id, error)
    return _outcome(entry, "failed", error=error), False


def _unfinishable(error: RunwayError) -> bool:
    """The job can never be started: its upload URLs expired (S3's 403) or Runway
    does not know it (404 at start)."""
    return is_forbidden(error) or (isinstance(error, NotFoundError) and error.step == "start")


def _maybe_created(error: RunwayError) -> bool:
    """After this failure of ``POST /jobs``, a job may exist on Runway."""
    if isinstance(error, OutcomeUnknownError):
        return True
    return error.status is not None and error.status >= 500 and error.status != 503


def _same_bytes(planned: FileRecord, receipt: UploadReceipt) -> Result[UploadReceipt, RunwayError]:
    """The bytes sent are the bytes planned (the entry's identity); else the file was
    edited during the batch, and this job must not be started with them. (Without
    ``upload_sha256`` only the size is compared.)"""
    if receipt.bytes == planned.bytes and receipt.sha256 in (planned.sha256, None):
        return Success(receipt)
    return Failure(
        InputError(
            f"{planned.path!r} changed after the batch was planned (SHA-256 "
            f"{planned.sha256[:12]}... then, {(receipt.sha256 or 'none')[:12]}... sent): "
            "the job is not started; rerun the batch to load the new contents as a new load",
            step="upload",
        )
    )


def _create(
    transport: Transport, config: RunwayConfig, spec: JobSpec, token: Token
) -> Result[Job, RunwayError]:
    return create_job(transport, config, token, spec)


def run_batch(
    transport: Transport,
    config: RunwayConfig,
    manifest: str | os.PathLike[str] | Sequence[Mapping[str, object]] | BatchPlan,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int = 1,
    skip_invalid: bool = False,
    token_source: TokenSource | None = None,
    cancel: threading.Event | None = None,
    on_progress: OnProgress | None = None,
) -> Result[BatchReport, RunwayError]:
    """Read the manifest (a path, the list of loads, or a ``BatchPlan`` already made),
    check every entry, open the journal (default: beside the manifest,
    ``default_journal_path``) and ``load_many``.

    Nothing is sent when an entry is invalid (``Failure(InputError)`` listing every
    problem by ``loads[i].field``), unless ``skip_invalid``: then the valid entries
    run and the invalid ones are reported ``invalid``. ``InputError`` too when the
    journal cannot be opened (or another batch is using it).
    """
    if isinstance(manifest, str | os.PathLike):
        read = read_manifest(manifest)
        if not isinstance(read, Success):
            return Failure(read.failure())
        loads: Manifest | Sequence[Mapping[str, object]] | BatchPlan = read.unwrap()
        where = Path(journal) if journal is not None else default_journal_path(manifest)
    elif journal is None:
        return Failure(InputError.of(["give journal=<path> for loads that are not in a file"]))
    else:
        loads, where = manifest, Path(journal)
    plan = loads if isinstance(loads, BatchPlan) else plan_batch(config, loads)
    if plan.invalid and not skip_invalid:
        return Failure(InputError.of(plan.problems))
    opened = Journal.open(where)
    if not isinstance(opened, Success):
        return Failure(opened.failure())
    try:
        return Success(
            load_many(
                transport,
                config,
                plan,
                opened.unwrap(),
                concurrency=concurrency,
                token_source=token_source,
                cancel=cancel,
                on_progress=on_progress,
            )
        )
    finally:
        opened.unwrap().close()


class BatchResults(msgspec.Struct, frozen=True, kw_only=True):
    """The results file of ``runway-client batch`` (one per run, replaced each time)."""

    manifest: str
    journal: str
    started_at: str
    completed_at: str
    runtime_sec: float
    dry_run: bool
    exit_code: int
    summary: dict[str, int]
    entries: tuple[EntryOutcome, ...]
    possible_orphans: tuple[object, ...] = ()
    problems: tuple[str, ...] = ()
