"""``RunwayClient``: configuration, a session and a token cache around the pipeline.

For people who prefer exceptions: every method runs a flow and either returns
its value or raises the ``RunwayError`` the flow returned (the very object).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TypeVar

import requests
from returns.result import Failure, Result, Success

from runway_client._batch import BatchPlan, BatchReport, run_batch
from runway_client._compat import OriginalClientMethods
from runway_client._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_UPLOAD_CONCURRENCY,
    RunwayConfig,
    make_config,
)
from runway_client._errors import AuthenticationError, InputError, RunwayError
from runway_client._events import OnProgress
from runway_client._files import read_small
from runway_client._models import (
    DownloadReceipt,
    JobSpec,
    LoadReceipt,
    OutputSet,
    OutputSetQuery,
    PendingJob,
    Token,
    make_output_set_query,
)
from runway_client._pipeline import (
    DEFAULT_POLL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    follow_up,
    load_and_wait,
    load_files,
    prepare_job,
    resume,
    wait_for_outputs,
    wait_problems,
)
from runway_client._retry import DEFAULT_RETRY, RetryPolicy
from runway_client._steps import (
    TokenSource,
    authorize,
    download,
    get_download_links,
    list_output_sets,
    verify_token,
    with_token,
)
from runway_client._transport import RequestsTransport, Transport
from runway_client.wire import download_scopes, load_scopes, read_scopes

__all__ = ["RunwayClient"]

_T = TypeVar("_T")

TOKEN_LEEWAY_SECONDS = 60.0
"""A cached token is renewed when it has less than this many seconds left (or a
quarter of its lifetime, if that is shorter)."""


class RunwayClient(OriginalClientMethods):
    """A client for one Runway instance, acting as one OAuth2 client for one partner.

    Args:
        runway_base_url: ``https://api.<instance>-<env>.runwayloader.org/api/v1``
            (a trailing slash is fine; http only for loopback hosts).
        auth_base_url: the Auth0 tenant, e.g. ``https://<name>.<env>.us.auth0.com``;
            the token endpoint is ``{auth_base_url}/oauth/token``.
        client_id, client_secret: the OAuth2 client credentials Runway issued.
        partner_code: the partner the client loads for, e.g. ``"ea"``.
        token_url: instead of ``auth_base_url``, any OIDC issuer's token endpoint.
        audience: override the token audience (default: the instance origin).
        connect_timeout, read_timeout: seconds (defaults 10 and 120).
        verify: TLS verification: ``True`` or a CA bundle path (``REQUESTS_CA_BUNDLE``
            does not override it).
        retry: a ``runway_client._retry.RetryPolicy``: how often and how patiently
            failed requests are tried again (never a ``POST /jobs`` that may have
            reached Runway).
        allow_http: permit plain http to hosts other than loopback.
        upload_sha256: compute each uploaded file's SHA-256 for its receipt (default
            ``True``, beside the send); ``False``: no checksum (``sha256`` is ``None``),
            uploads at network speed.
        verify_etag: compare each PUT's ``ETag`` with the file's MD5 and raise
            ``IntegrityError`` on a mismatch (default ``False``: see docs/usage.md, "Performance").
        upload_concurrency: files of one job uploaded at once (default 4); the
            connection pool is sized for it.
        transport: a ``Transport`` to use instead of HTTP over ``requests``.
        token_cache: a ``TokenSource`` to take tokens from instead of this client's
            own cache, e.g. a ``FileTokenCache`` shared by processes.

    Raises:
        InputError: any setting is malformed; every problem is listed.

    The token is cached per scope set until 60 s before it expires; the cache is
    guarded by a lock so one client may be shared by threads.
    """

    def __init__(
        self,
        runway_base_url: str,
        auth_base_url: str | None = None,
        client_id: str = "",
        client_secret: str = "",
        partner_code: str = "",
        *,
        token_url: str | None = None,
        audience: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        verify: bool | str = True,
        retry: RetryPolicy = DEFAULT_RETRY,
        allow_http: bool = False,
        upload_sha256: bool = True,
        verify_etag: bool = False,
        upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY,
        transport: Transport | None = None,
        token_cache: TokenSource | None = None,
    ) -> None:
        self.config: RunwayConfig = _unwrap(
            make_config(
                runway_base_url=runway_base_url,
                auth_base_url=auth_base_url,
                token_url=token_url,
                audience=audience,
                client_id=client_id,
                client_secret=client_secret,
                partner_code=partner_code,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                verify=verify,
                retry=retry,
                allow_http=allow_http,
                upload_sha256=upload_sha256,
                verify_etag=verify_etag,
                upload_concurrency=upload_concurrency,
            )
        )
        self._owns_transport = transport is None
        self.transport: Transport = transport or RequestsTransport(
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
            verify=self.config.verify,
            session=requests.Session(),
            pool_size=self.config.upload_concurrency,
        )
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._token_lock = threading.Lock()  # guards _scope_locks
        self._scope_locks: dict[tuple[str, ...], threading.Lock] = {}
        self.token_cache: TokenSource = token_cache or self._cached_token

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RunwayClient(runway_base_url={c.runway_base_url!r}, token_url={c.token_url!r}, "
            f"client_id={c.client_id!r}, client_secret={c.client_secret!r}, "
            f"partner_code={c.partner_code!r})"
        )

    # ------------------------------------------------------------ tokens

    def _cached_token(
        self, scopes: tuple[str, ...], /, *, rejected: Token | None = None
    ) -> Result[Token, RunwayError]:
        """A token for ``scopes``: the cached one while it has over 60 s left (and is
        not ``rejected``, one the API just refused), else a new one.

        Thread-safe, one lock per scope set: threads asking at once share one
        request to the identity provider, and a slow request for one scope set
        does not hold up callers of another.
        """
        key = tuple(sorted(set(scopes)))
        with self._token_lock:
            lock = self._scope_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._tokens.get(key)
            if (
                cached is not None
                and cached is not rejected
                and cached.is_fresh(leeway=TOKEN_LEEWAY_SECONDS)
            ):
                return Success(cached)
            fetched = authorize(self.transport, self.config, scopes)
            if isinstance(fetched, Success):
                self._tokens[key] = fetched.unwrap()
            return fetched

    # ------------------------------------------------------------ loads

    def load_files(
        self,
        tenant_code: str,
        bundle_name: str,
        input_files: Mapping[str, str | os.PathLike[str]],
        bundle_params: Mapping[str, str] | None = None,
        school_year: str | int = "",
        *,
        wait: bool | float = False,
        download_to: str | os.PathLike[str] | None = None,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> LoadReceipt:
        """Load ``input_files`` into Runway for ``tenant_code`` with ``bundle_name`` and start the run.

        Args:
            tenant_code: the Runway tenant, e.g. ``"ea"``.
            bundle_name: the bundle path, e.g. ``"assessments/PSAT_SAT"``.
            input_files: file key (the bundle's ``env_var``) -> local path; the
                base name is the file name Runway shows.
            bundle_params: the bundle's params, e.g. ``{"TEST_TYPE": "SAT"}``.
            school_year: ``"2526"``, ``"2025-2026"``, ``"2025-26"``, ``"2026"`` or
                ``2026``; sent as the end year ``"2026"``.
            wait: ``False`` (default) returns once the job is started; ``True``
                waits up to an hour for the run's output set, a number waits
                that many seconds. The receipt's ``output_set`` is then set.
            download_to: a folder: wait (as ``wait``, or an hour), then download the
                output set's files there (``receipt.downloads``).
            poll_interval: seconds between looks at the output sets while waiting.
            cancel: set it (from another thread, a signal handler) to stop: no job
                is created after that, uploads under way end, and
                ``CancelledError`` is raised, with ``pending`` once the job exists.
            on_progress: called with each ``runway_client._events`` value (job
                created, file progress, file uploaded, started, waiting, failed),
                possibly from several upload threads at once.

        Returns:
            the ``LoadReceipt``: job uid, files with bytes and SHA-256, times.
            Without ``wait``, the run's status is seen in the Runway UI.

        Raises:
            InputError: before any request, listing every bad input.
            OutputsNotReadyError: the wait ended with no output set for the job.
            RunwayError: the subclass for what failed; ``job_uid`` is set once
                a job exists.
        """
        spec = prepare_job(
            partner=self.config.partner_code,
            tenant=tenant_code,
            bundle=bundle_name,
            school_year=school_year,
            input_files=input_files,
            params=bundle_params,
        )
        timeout, wait_issues = _wait_plan(wait, poll_interval, downloading=download_to is not None)
        if wait_issues:  # reported with every other input problem, before any request
            earlier = spec.failure() if isinstance(spec, Failure) else None
            raise InputError.of(
                [*(earlier.problems or (earlier.message,) if earlier else ()), *wait_issues]
            )
        if timeout is None:
            return self._settle(
                spec.bind(partial(self._load_spec, cancel=cancel, on_progress=on_progress))
            )
        return self._settle(
            spec.bind(
                partial(
                    self._load_and_wait,
                    timeout=timeout,
                    poll_interval=poll_interval,
                    dest_dir=download_to,
                    cancel=cancel,
                    on_progress=on_progress,
                )
            )
        )

    def _load_spec(
        self,
        spec: JobSpec,
        *,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> Result[LoadReceipt, RunwayError]:
        return load_files(
            self.transport,
            self.config,
            spec,
            token_source=self.token_cache,
            cancel=cancel,
            on_progress=on_progress,
        )

    def _load_and_wait(
        self,
        spec: JobSpec,
        *,
        timeout: float,
        poll_interval: float,
        dest_dir: str | os.PathLike[str] | None,
        cancel: threading.Event | None,
        on_progress: OnProgress | None,
    ) -> Result[LoadReceipt, RunwayError]:
        return load_and_wait(
            self.transport,
            self.config,
            spec,
            timeout=timeout,
            poll_interval=poll_interval,
            dest_dir=dest_dir,
            token_source=self.token_cache,
            cancel=cancel,
            on_progress=on_progress,
        )

    def resume(
        self,
        pending: PendingJob | str | os.PathLike[str],
        *,
        wait: bool | float = False,
        download_to: str | os.PathLike[str] | None = None,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> LoadReceipt:
        """Finish a job created but not started: upload what is missing, start it.

        ``pending`` is a failed load's ``error.pending``, or the path of a file its
        ``to_json()`` was written to (what ``runway-client`` writes on failure).
        No new job is created; within an hour of the job's creation only (its
        upload URLs expire). ``wait``, ``download_to``, ``poll_interval``, ``cancel``
        and ``on_progress`` work as in ``load_files``. Returns the ``LoadReceipt``; raises ``RunwayError``.
        """
        timeout, wait_issues = _wait_plan(wait, poll_interval, downloading=download_to is not None)
        if wait_issues:
            raise InputError.of(wait_issues)
        if isinstance(pending, PendingJob):
            loaded: Result[PendingJob, RunwayError] = Success(pending)
        elif isinstance(pending, str | os.PathLike):
            loaded = read_small(pending).bind(PendingJob.from_json)
        else:
            raise InputError.of(
                [
                    "resume takes a PendingJob (a failed load's error.pending) or the path of "
                    f"the file it was saved to, got {type(pending).__name__}"
                ]
            )
        resumed = loaded.bind(partial(self._resume, cancel=cancel, on_progress=on_progress))
        if timeout is not None:
            resumed = resumed.bind(
                partial(
                    self._follow,
                    timeout=timeout,
                    poll_interval=poll_interval,
                    dest_dir=download_to,
                    cancel=cancel,
                    on_progress=on_progress,
                )
            )
        return self._settle(resumed)

    def _resume(
        self,
        pending: PendingJob,
        *,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> Result[LoadReceipt, RunwayError]:
        return resume(
            self.transport,
            self.config,
            pending,
            token_source=self.token_cache,
            cancel=cancel,
            on_progress=on_progress,
        )

    def _follow(
        self,
        receipt: LoadReceipt,
        *,
        timeout: float,
        poll_interval: float,
        dest_dir: str | os.PathLike[str] | None,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> Result[LoadReceipt, RunwayError]:
        return follow_up(
            self.transport,
            self.config,
            receipt,
            timeout=timeout,
            poll_interval=poll_interval,
            dest_dir=dest_dir,
            token_source=self.token_cache,
            cancel=cancel,
            on_progress=on_progress,
        )

    def load_many(
        self,
        manifest: str | os.PathLike[str] | Sequence[Mapping[str, object]] | BatchPlan,
        *,
        journal: str | os.PathLike[str] | None = None,
        concurrency: int = 1,
        skip_invalid: bool = False,
        cancel: threading.Event | None = None,
        on_progress: OnProgress | None = None,
    ) -> BatchReport:
        """Run many loads from a manifest, journaled so that running it again is safe.

        Args:
            manifest: the path of a YAML manifest (``defaults:`` and ``loads:``, see
                ``docs/unattended.md``), or the list of loads as mappings with
                ``load_files``' argument names (or a ``BatchPlan`` already made).
            journal: the journal's path (default: beside the manifest,
                ``<manifest>.journal``; required for a list of loads).
            concurrency: loads at once (1-64), sharing this client's token cache and
                connection pool.
            skip_invalid: run the valid entries even if some are invalid.
            cancel: set it to stop between steps: no job is created after it; entries
                stopped midway are ``cancelled`` (their jobs are finished by the next
                run), those not reached ``not_run``.
            on_progress: hears every entry's progress events (from several threads).

        Returns:
            the ``BatchReport``: one outcome per entry (``started``, ``skipped``,
            ``failed`` with its error, ``invalid``, ``not_run``). A failed entry does
            not raise: run the same manifest again to retry it.

        Raises:
            InputError: a bad manifest (every problem, named ``loads[i].field``) before
                any request, or a journal in use by another batch.
        """
        if isinstance(self.transport, RequestsTransport) and isinstance(concurrency, int):
            # each load may upload its files ``upload_concurrency`` at once
            self.transport.grow_pool(concurrency * self.config.upload_concurrency)
        return self._settle(
            run_batch(
                self.transport,
                self.config,
                manifest,
                journal=journal,
                concurrency=concurrency,
                skip_invalid=skip_invalid,
                token_source=self.token_cache,
                cancel=cancel,
                on_progress=on_progress,
            )
        )

    # ------------------------------------------------------------ the read side

    def verify_token(self) -> tuple[str, ...]:
        """The partner codes this client's token is valid for (``()`` for none).

        Raises ``RunwayError`` (``AuthenticationError`` for bad credentials ...).
        """
        return self._settle(
            with_token(
                self.token_cache,
                load_scopes(self.config.partner_code),
                partial(verify_token, self.transport, self.config),
            )
        )

    def list_output_sets(
        self,
        *,
        tenant_code: str | None = None,
        school_year: str | int | None = None,
        sent_to_ods: bool | None = None,
        created_after: datetime | None = None,
        bundle_name: str | None = None,
    ) -> tuple[OutputSet, ...]:
        """The output sets of this partner's successful runs, oldest first, filtered.

        Args:
            tenant_code, bundle_name: exact matches.
            school_year: any spelling ``load_files`` takes.
            sent_to_ods: ``True``/``False`` to filter on it.
            created_after: a timezone-aware ``datetime``; sets created strictly after it.

        Raises:
            InputError: a bad filter, before any request.
            RunwayError: what the server or the network said.
        """
        query = make_output_set_query(
            partner=self.config.partner_code,
            tenant=tenant_code,
            school_year=school_year,
            sent_to_ods=sent_to_ods,
            created_after=created_after,
            bundle=bundle_name,
        )
        return self._settle(query.bind(self._list))

    def _list(self, query: OutputSetQuery) -> Result[tuple[OutputSet, ...], RunwayError]:
        return with_token(
            self.token_cache,
            read_scopes(query.partner),
            partial(list_output_sets, self.transport, self.config, query=query),
        )

    def get_download_links(self, output_set: OutputSet | str) -> dict[str, str]:
        """File name -> presigned GET URL (valid up to 1 hour) for an output set or its uid."""
        links = with_token(
            self.token_cache,
            download_scopes(self.config.partner_code),
            partial(get_download_links, self.transport, self.config, output_set=output_set),
        )
        return dict(self._settle(links).links)

    def download(
        self,
        output_set: OutputSet | str,
        dest_dir: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> tuple[DownloadReceipt, ...]:
        """Download every file of an output set (or its uid) into ``dest_dir``.

        Each file is written to a temporary name and renamed when complete and
        checked against its ``Content-Length``; a file already there with the
        same size is kept unless ``overwrite``. Expired links are renewed once.
        Returns one ``DownloadReceipt`` (name, path, bytes, sha256) per file.
        """
        fetch = partial(
            download,
            self.transport,
            self.config,
            output_set=output_set,
            dest_dir=dest_dir,
            overwrite=overwrite,
        )
        return self._settle(
            with_token(self.token_cache, download_scopes(self.config.partner_code), fetch)
        )

    def wait_for_outputs(
        self,
        job_uid: str,
        *,
        timeout: float = DEFAULT_WAIT_SECONDS,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        created_after: datetime | None = None,
    ) -> OutputSet:
        """Wait until the run of ``job_uid`` has an output set, and return it.

        ``timeout`` and ``poll_interval`` are seconds; ``created_after`` (aware)
        narrows the listing, e.g. to a little before the job was created.

        Raises:
            OutputsNotReadyError: none appeared within ``timeout`` (the run may
                still be running, or may have failed: see the Runway UI).
        """
        query = make_output_set_query(partner=self.config.partner_code, created_after=created_after)
        return self._settle(
            query.bind(partial(self._wait, job_uid, timeout=timeout, poll_interval=poll_interval))
        )

    def _wait(
        self, job_uid: str, query: OutputSetQuery, *, timeout: float, poll_interval: float
    ) -> Result[OutputSet, RunwayError]:
        return wait_for_outputs(
            self.transport,
            self.config,
            job_uid,
            query=query,
            timeout=timeout,
            poll_interval=poll_interval,
            token_source=self.token_cache,
        )

    def _settle(self, result: Result[_T, RunwayError]) -> _T:
        """The value, or raise the error; a 401 from the API drops the cached tokens
        (revoked or rotated), so the next call fetches a fresh one."""
        if isinstance(result, Failure):
            error = result.failure()
            if (
                isinstance(error, AuthenticationError)
                and error.status == 401
                and error.step != "authorize"
            ):
                self._tokens.clear()
        return _unwrap(result)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the HTTP session (if this client made it)."""
        if self._owns_transport and isinstance(self.transport, RequestsTransport):
            self.transport.close()

    def __enter__(self) -> RunwayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _wait_plan(
    wait: object, poll_interval: object, *, downloading: bool
) -> tuple[float | None, list[str]]:
    """``(seconds to wait or None, problems)``: ``True`` (or downloading) is the default hour."""
    if wait is True or (wait is False and downloading):
        seconds: object = DEFAULT_WAIT_SECONDS
    elif wait is False:
        return None, []
    else:
        seconds = wait
    problems = wait_problems(seconds, poll_interval)
    if problems or not isinstance(seconds, int | float):
        return None, problems or [f"wait must be True, False or seconds, got {wait!r}"]
    return float(seconds), []


def _unwrap(result: Result[_T, RunwayError]) -> _T:
    """The value, or raise the ``RunwayError`` itself (with no chained cause)."""
    if isinstance(result, Failure):
        raise result.failure()
    return result.unwrap()
