"""The original ``runway_client``'s surface, in one place: a mixin ``RunwayClient`` inherits.

Education Analytics' first client (and code written for it, such as the
``RunwayHook`` and tasks of ``edu_edfi_airflow``) used these names; they work
unchanged, as thin wrappers over the steps, with this client's checks::

    job = client.request_runway_job(tenant_code="ea", bundle_name="assessments/PSAT_SAT",
                                    input_files={"INPUT_FILE": "/data/sat.csv"},
                                    bundle_params={"TEST_TYPE": "SAT"}, school_year="2526")
    job["uid"], job["uploadUrls"]          # read like Runway's answer
    client.upload_to_s3(job, {"INPUT_FILE": "/data/sat.csv"})
    client.start_job(job)

What changed (docs/coming-from-original.md): every local check runs before the job
is created (a bad file, school year or name raises ``InputError`` and no job is
left behind); ``"2526"`` is sent as ``"2026"``; only base file names are sent;
requests are retried like ``load_files``'s (never a ``POST /jobs`` that may have
reached Runway); an upload or start that fails carries ``error.pending`` for
``client.resume``. ``RunwayResponseError`` is ``RunwayError``: an old ``except
RunwayResponseError`` catches every error this client raises.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeVar

from msgspec.structs import replace
from returns.result import Failure, Result, Success

from runway_client._errors import (
    JOB_ALREADY_STARTED,
    InputError,
    RequestRejectedError,
    RunwayError,
)
from runway_client._files import check_input_files
from runway_client._models import (
    InputFile,
    Job,
    JobSpec,
    LoadReceipt,
    PendingJob,
    Token,
    UploadedJob,
    UploadReceipt,
)
from runway_client._pipeline import prepare_job, start_uploaded
from runway_client._redaction import Secret, redact_url
from runway_client._steps import TokenSource, create_job, upload, with_token
from runway_client.wire import load_scopes

if TYPE_CHECKING:
    from runway_client._config import RunwayConfig
    from runway_client._transport import Transport

__all__ = ["OriginalClientMethods", "RunwayJob", "RunwayResponseError", "TokenResponse"]

_T = TypeVar("_T")

RunwayResponseError: Final = RunwayError
"""The original client's one exception, now another name of ``RunwayError``: every
error this client raises is one, so ``except RunwayResponseError`` keeps catching
(``InputError`` for bad local input included)."""


class RunwayJob(Mapping[str, object]):
    """What ``request_runway_job`` returns: Runway's answer to ``POST /jobs``, read-only.

    ``job["uid"]`` is the job's uid (str) and ``job["uploadUrls"]`` a new dict of
    file key -> presigned S3 PUT URL (valid one hour), as the original client
    returned them; ``dict(job)`` is that JSON object. ``job.job`` is the checked
    ``Job`` (its spec: the files, sizes and names the job was created with), which
    ``upload_to_s3`` and ``start_job`` use. ``repr`` masks the URLs' signatures.

    >>> from datetime import UTC, datetime
    >>> from runway_client._models import parse_school_year
    >>> spec = JobSpec(partner="ea", tenant="ea", bundle="assessments/X",
    ...                school_year=parse_school_year("2526").unwrap(), files=())
    >>> job = RunwayJob(Job(uid="u-1", upload_urls={"INPUT_FILE": "https://s3/x?X-Amz-Signature=abc"},
    ...                     spec=spec, created_at=datetime.now(UTC)))
    >>> job["uid"], sorted(job), "abc" in repr(job)
    ('u-1', ['uid', 'uploadUrls'], False)
    """

    __slots__ = ("_job",)

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def job(self) -> Job:
        """The ``Job`` this answer belongs to."""
        return self._job

    def __getitem__(self, key: str) -> object:
        if key == "uid":
            return self._job.uid
        if key == "uploadUrls":
            return dict(self._job.upload_urls)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("uid", "uploadUrls"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        urls = {key: redact_url(url) for key, url in self._job.upload_urls.items()}
        return f"RunwayJob({{'uid': {self._job.uid!r}, 'uploadUrls': {urls!r}}})"


class TokenResponse:
    """The ``token`` attribute of the original client: the access token it holds.

    Attributes: ``access_token`` (a ``Secret``: ``get_secret_value()`` or
    ``reveal()`` gives the text, ``repr`` masks it), ``scope`` (space-separated),
    ``expires_in`` (seconds it was granted for), ``token_type``, ``expires_at``
    (naive local ``datetime``, 10 s early, as the original computed it).
    """

    __slots__ = ("_token",)

    def __init__(self, token: Token) -> None:
        self._token = token

    @property
    def access_token(self) -> Secret:
        return self._token.access_token

    @property
    def scope(self) -> str:
        return " ".join(self._token.scope)

    @property
    def expires_in(self) -> int:
        return int(self._token.lifetime)

    @property
    def token_type(self) -> str:
        return self._token.token_type

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self._token.expires_at) - timedelta(seconds=10)

    def is_expired(self) -> bool:
        """True once ``expires_at`` has passed."""
        return datetime.now() >= self.expires_at

    def to_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` (RFC 6750)."""
        return {"Authorization": self._token.authorization}

    def __repr__(self) -> str:
        return (
            f"TokenResponse(access_token={self.access_token!r}, scope={self.scope!r}, "
            f"expires_in={self.expires_in!r}, token_type={self.token_type!r})"
        )


class _State:
    """Per client: the token last obtained and what was uploaded to each requested job."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: Token | None = None
        self.jobs: dict[str, Job] = {}
        self.uploads: dict[str, dict[str, UploadReceipt]] = {}
        self.start_sent: set[str] = set()  # jobs whose start may have reached Runway
        self.started: dict[str, LoadReceipt] = {}  # jobs Runway started for this client


class OriginalClientMethods:
    """The original client's methods; ``RunwayClient`` inherits them.

    Each raises the ``RunwayError`` its step returned (``RunwayResponseError`` is the
    same class). ``load_files`` and ``verify_token`` live on ``RunwayClient`` itself
    and keep the original's signatures; they return a ``LoadReceipt`` and the
    partner codes where the original returned ``None``.
    """

    if TYPE_CHECKING:
        config: RunwayConfig
        transport: Transport
        token_cache: TokenSource

        def _settle(self, result: Result[_T, RunwayError]) -> _T: ...

    # ------------------------------------------------------------ the token

    @property
    def token(self) -> TokenResponse | None:
        """The token ``set_token`` (or ``request_runway_job`` / ``start_job``) last
        obtained for loads, or ``None`` before any. Reading it sends nothing."""
        held = self._compat().token
        return None if held is None else TokenResponse(held)

    def set_token(self) -> None:
        """Obtain a load token (``create:jobs partner:<code>``) and hold it as ``token``.

        A first call takes the client's cached token while it is fresh (tokens are
        rate-limited and billed), a later call always fetches a new one.
        Raises ``AuthenticationError`` for refused credentials (a ``RunwayError``).
        """
        held = self._compat().token
        scopes = load_scopes(self.config.partner_code)
        fetched = (
            self._held_tokens(scopes) if held is None else self._held_tokens(scopes, rejected=held)
        )
        self._settle(fetched)

    def _held_tokens(
        self, scopes: tuple[str, ...], /, *, rejected: Token | None = None
    ) -> Result[Token, RunwayError]:
        """The client's token source, remembering the token it gives as ``token``."""
        got = self.token_cache(scopes, rejected=rejected)
        if isinstance(got, Success):
            self._compat().token = got.unwrap()
        return got

    # ------------------------------------------------------------ the three calls

    def request_runway_job(
        self,
        tenant_code: str,
        bundle_name: str,
        input_files: Mapping[str, str | os.PathLike[str]],
        bundle_params: Mapping[str, str] | None = None,
        school_year: str | int = "",
    ) -> RunwayJob:
        """Create a job (``POST /jobs``) for ``input_files``; nothing is uploaded yet.

        The arguments are ``load_files``'s, checked the same way before anything is
        sent (files readable and non-empty, names, ``school_year`` in any spelling,
        sent as the end year: ``"2526"`` -> ``"2026"``); only base file names go to
        Runway. ``POST /jobs`` is retried only when it certainly did not arrive.

        Returns:
            a ``RunwayJob``: ``job["uid"]``, ``job["uploadUrls"]`` (key -> URL).

        Raises:
            InputError: before any request, listing every bad input.
            RunwayError: what Runway or the network said (``OutcomeUnknownError``
                when the request may have created a job).
        """
        spec = prepare_job(
            partner_code=self.config.partner_code,
            tenant_code=tenant_code,
            bundle_name=bundle_name,
            school_year=school_year,
            input_files=input_files,
            bundle_params=bundle_params,
        )
        job = self._settle(spec.bind(self._create))
        state = self._compat()
        with state.lock:
            state.jobs[job.uid] = job
            state.uploads[job.uid] = {}
        return RunwayJob(job)

    def _create(self, spec: JobSpec) -> Result[Job, RunwayError]:
        def call(token: Token) -> Result[Job, RunwayError]:
            return create_job(self.transport, self.config, token, spec)

        return with_token(self._held_tokens, load_scopes(spec.partner), call)

    def upload_to_s3(
        self, job: RunwayJob, input_files: Mapping[str, str | os.PathLike[str]]
    ) -> tuple[UploadReceipt, ...]:
        """PUT each of ``input_files`` (file key -> local path) to ``job``'s presigned URL.

        Every key must be one of the job's and every file must have the base name the
        job was created with; all of that is checked before the first byte is sent.
        Each PUT is retried like ``load_files``'s. Returns one ``UploadReceipt``
        (bytes, SHA-256, ETag) per file given.

        Raises:
            InputError: a key the job does not have, a renamed or unreadable file.
            RunwayError: the upload failed; ``error.pending`` holds the job and the
                files uploaded so far (``client.resume(error.pending)`` finishes it).
        """
        known = self._known(job)
        files = check_input_files(input_files)
        self._settle(files.bind(lambda checked: _match(known, checked)))
        given = files.unwrap()
        state = self._compat()
        with state.lock:
            full = _with_files(state.jobs.get(known.uid, known), given)
            state.jobs[known.uid] = full
            before = dict(state.uploads.get(known.uid, {}))
        only_given = replace(full, spec=replace(full.spec, files=given))
        sent = upload(self.transport, only_given, policy=self.config.retry)
        if isinstance(sent, Failure):
            error = sent.failure()
            if error.pending is not None:  # resumable: name every file uploaded so far
                done = {**before, **{r.key: r for r in error.pending.receipts}}
                error = error.replace(pending=PendingJob(job=full, receipts=_ordered(full, done)))
            self._settle(Failure(error))
        receipts = sent.unwrap().receipts
        with state.lock:
            state.uploads.setdefault(known.uid, {}).update({r.key: r for r in receipts})
        return receipts

    def start_job(self, job: RunwayJob) -> LoadReceipt:
        """``POST /jobs/<uid>/start``: Runway begins the run of ``job``.

        Call after ``upload_to_s3``; returns the ``LoadReceipt`` (its ``files`` are the
        uploads this client made for the job). Runway runs a job again each time it is
        started after its run ended (CONTRACT.md, start), so a job is started once:

        - a job this client already started (a 202) is not started again: that call
          raises ``RequestRejectedError`` (``code == "job_already_started"``);
        - after a start whose answer was lost, a second call looks for the job's
          output set first, and counts ``Job already in progress`` as started.

        Raises:
            RunwayError: ``RequestRejectedError`` when a file is missing on S3
                (``error.pending`` holds the job for ``client.resume``) or the job
                was started already.
        """
        known = self._known(job)
        state = self._compat()
        with state.lock:
            earlier = state.started.get(known.uid)
            full = state.jobs.get(known.uid, known)
            done = dict(state.uploads.get(known.uid, {}))
            may_have_run = known.uid in state.start_sent
            state.start_sent.add(known.uid)
        if earlier is not None:
            raise RequestRejectedError(
                f"job {known.uid} was started by this client at {earlier.started_at:%H:%M:%S} "
                "UTC; it is not started again: Runway would run it a second time once its "
                "run ends (a second load into the ODS). Load the files again for a new run",
                step="start",
                job_uid=known.uid,
                code=JOB_ALREADY_STARTED,
            )
        uploaded = UploadedJob(job=full, receipts=_ordered(full, done))
        started = start_uploaded(
            self.transport,
            self.config,
            uploaded,
            token_source=self._held_tokens,
            may_have_run=may_have_run,
        )
        if isinstance(started, Failure) and _refused(started.failure()):
            with state.lock:  # Runway answered no: no run began
                state.start_sent.discard(known.uid)
        receipt = self._settle(started)
        with state.lock:
            state.started[known.uid] = receipt
            state.jobs.pop(known.uid, None)
            state.uploads.pop(known.uid, None)
        return receipt

    # ------------------------------------------------------------ helpers

    def _known(self, job: object) -> Job:
        if isinstance(job, RunwayJob):
            return job.job
        raise InputError.of(
            [
                "job must be what request_runway_job returned (a RunwayJob), got "
                f"{type(job).__name__}; to finish a job from elsewhere use client.resume"
            ]
        )

    def _compat(self) -> _State:
        state = self.__dict__.get("_compat_state")
        if state is None:
            state = self.__dict__.setdefault("_compat_state", _State())
        return state  # type: ignore[no-any-return]


def _match(job: Job, given: tuple[InputFile, ...]) -> Result[None, RunwayError]:
    """Each given file must be one the job expects, under the name it was created with."""
    problems = []
    for source in given:
        if source.key not in job.upload_urls:
            problems.append(
                f"input_files[{source.key!r}]: job {job.uid} has no file key {source.key!r} "
                f"(its keys: {', '.join(sorted(job.upload_urls))})"
            )
            continue
        try:
            expected = job.spec.file(source.key).name
        except KeyError:
            continue
        if source.name != expected:
            problems.append(
                f"input_files[{source.key!r}]: the job was created for a file named "
                f"{expected!r}, not {source.name!r}"
            )
    return Failure(InputError.of(problems)) if problems else Success(None)


def _with_files(job: Job, given: tuple[InputFile, ...]) -> Job:
    """``job`` with the given files in place of (or beside) its own, same key order."""
    by_key = {f.key: f for f in given}
    files = [by_key.pop(f.key, f) for f in job.spec.files]
    files.extend(by_key.values())
    return replace(job, spec=replace(job.spec, files=tuple(files)))


def _refused(error: RunwayError) -> bool:
    """Runway answered the start with a 4xx other than "already in progress": no run began."""
    return (
        error.status is not None and 400 <= error.status < 500 and error.code != JOB_ALREADY_STARTED
    )


def _ordered(job: Job, done: Mapping[str, UploadReceipt]) -> tuple[UploadReceipt, ...]:
    return tuple(done[f.key] for f in job.spec.files if f.key in done)
