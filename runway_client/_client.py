"""``RunwayClient``: settings, a transport and a ``TokenCache`` around the flows.

For people who prefer exceptions: every method runs a flow and returns its value
or raises the ``RunwayError`` it returned (the very object). Nothing else lives here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, Unpack

from returns.result import Failure, Result

from runway_client._compat import OriginalClientMethods
from runway_client._config import (
    TRANSPORT_SETTINGS,
    Options,
    RunwayConfig,
    changed,
    config_from_env,
    for_transport,
    make_config,
    remake,
)
from runway_client._defaults import DEFAULT_POLL_SECONDS, DEFAULT_WAIT_SECONDS
from runway_client._errors import RunwayError
from runway_client._events import OnProgress
from runway_client._models import DownloadReceipt, LoadReceipt, OutputSet, PendingJob
from runway_client._models import make_output_set_query as _query
from runway_client._pipeline import (
    check_token,
    download_links,
    fetch_outputs,
    find_output_sets,
    load_with_plan,
    prepare_job,
    resume_with_plan,
    wait_for_outputs,
    wait_plan,
)
from runway_client._steps import TokenSource
from runway_client._tokens import TokenCache
from runway_client._transport import RequestsTransport, Transport

if TYPE_CHECKING:  # imported by load_many: a single load does not pay for the journal
    from runway_client._batch import BatchPlan, BatchReport

__all__ = ["RunwayClient"]

_T = TypeVar("_T")


class RunwayClient(OriginalClientMethods):
    """A client for one Runway instance, acting as one OAuth2 client for one partner.

    Args:
        runway_base_url: ``https://api.<instance>-<env>.runwayloader.org/api/v1``.
        auth_base_url: the Auth0 tenant, e.g. ``https://<name>.<env>.us.auth0.com``
            (token endpoint ``{auth_base_url}/oauth/token``); or ``token_url=``.
        client_id, client_secret: the OAuth2 client credentials Runway issued.
        partner_code: the partner the client loads for, e.g. ``"ea"``.
        token_cache: a ``TokenSource`` to share (default: a new ``TokenCache``).
        transport: a ``Transport`` instead of HTTP over ``requests``; it brings its
            own timeouts and TLS settings (setting them too is an ``InputError``).
        **options: the other ``make_config`` settings (``Options``): ``token_url``,
            ``audience``, ``connect_timeout``, ``read_timeout`` (seconds), ``verify``,
            ``retry``, ``allow_http``, ``upload_sha256``, ``verify_etag``,
            ``upload_concurrency``.

    Raises ``InputError`` listing every malformed setting. A client may be shared
    by threads. ``from_env``, ``from_config`` and ``with_options`` make clients too.

    >>> RunwayClient("https://api.x.org/api/v1", "https://a.auth0.com", "id", "s", "ea")
    RunwayClient(runway_base_url='https://api.x.org/api/v1', token_url='https://a.auth0.com/oauth/token', client_id='id', client_secret=Secret('********'), partner_code='ea')
    """

    def __init__(
        self,
        runway_base_url: str,
        auth_base_url: str | None = None,
        client_id: str = "",
        client_secret: str = "",
        partner_code: str = "",
        *,
        token_cache: TokenSource | None = None,
        transport: Transport | None = None,
        **options: Unpack[Options],
    ) -> None:
        config = make_config(
            runway_base_url=runway_base_url,
            auth_base_url=auth_base_url,
            client_id=client_id,
            client_secret=client_secret,
            partner_code=partner_code,
            **options,
        )
        self._start(_unwrap(config), transport, token_cache)

    def _start(
        self,
        config: RunwayConfig,
        transport: Transport | None,
        tokens: TokenSource | None,
        *,
        owned: bool = False,
    ) -> None:
        given = transport is not None and not owned
        self.config = _unwrap(for_transport(config)) if given else config
        self._owns_transport = not given
        self.transport: Transport = transport or RequestsTransport(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            verify=config.verify,
            pool_size=config.upload_concurrency,
        )
        self.token_cache: TokenSource = tokens or TokenCache(self.transport, config)

    @classmethod
    def from_config(
        cls,
        config: RunwayConfig,
        *,
        transport: Transport | None = None,
        token_cache: TokenSource | None = None,
    ) -> RunwayClient:
        """A client for a checked ``RunwayConfig`` (``make_config``, ``config_from_env``);
        with ``transport``, its timeouts and ``verify`` must be the defaults."""
        client = cls.__new__(cls)
        client._start(config, transport, token_cache)
        return client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunwayClient:
        """A client from the ``RUNWAY_*`` environment variables (``config_from_env``);
        ``InputError`` names each variable that is missing or wrong."""
        return cls.from_config(_unwrap(config_from_env(environ)))

    def with_options(self, **changes: Unpack[Options]) -> RunwayClient:
        """A new client with some settings changed, e.g. ``client.with_options(
        read_timeout=600)``; this one is left as it is. It shares this client's
        transport and token cache unless a change needs new ones."""
        config = _unwrap(remake(self.config, **changes))
        new_session = self._owns_transport and changed(self.config, config, TRANSPORT_SETTINGS)
        new_tokens = new_session or changed(self.config, config, ("token_url", "audience", "retry"))
        made = RunwayClient.__new__(RunwayClient)
        transport = None if new_session else self.transport
        tokens = None if new_tokens else self.token_cache
        made._start(config, transport, tokens, owned=self._owns_transport)
        return made

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RunwayClient(runway_base_url={c.runway_base_url!r}, token_url={c.token_url!r}, "
            f"client_id={c.client_id!r}, client_secret={c.client_secret!r}, "
            f"partner_code={c.partner_code!r})"
        )

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
        """Load ``input_files`` for ``tenant_code`` with ``bundle_name`` and start the run.

        ``input_files``: file key (the bundle's ``env_var``) -> local path;
        ``bundle_params``: e.g. ``{"TEST_TYPE": "SAT"}``; ``school_year``: ``"2526"``,
        ``"2025-2026"``, ``"2025-26"``, ``"2026"`` or ``2026`` (sent as ``"2026"``).
        ``wait``: ``True`` waits up to an hour for the run's output set, a number that
        many seconds; ``download_to`` waits, then downloads its files there;
        ``poll_interval``: seconds between looks. ``cancel``: set it (another thread,
        a signal handler) to stop: no job is created after that, uploads under way end,
        and ``CancelledError`` is raised (with ``pending`` once the job exists).
        ``on_progress`` hears each ``runway_client._events`` value, possibly from
        several upload threads at once. Returns the ``LoadReceipt``.

        Raises ``InputError`` before any request (every bad input listed),
        ``OutputsNotReadyError`` when a wait ends without an output set, or the
        ``RunwayError`` of the step that failed (``job_uid`` set once a job exists).
        """
        spec = prepare_job(
            partner_code=self.config.partner_code,
            tenant_code=tenant_code,
            bundle_name=bundle_name,
            school_year=school_year,
            input_files=input_files,
            bundle_params=bundle_params,
        )
        plan = wait_plan(wait, poll_interval, download_to)
        return self._run(load_with_plan, spec, plan, cancel=cancel, on_progress=on_progress)

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
        """Finish a job created but not started (a failed load's ``error.pending``, or
        the file ``runway-client`` saved it to): upload what is missing, start it.
        Within an hour of the job's creation. ``wait`` etc. as in ``load_files``."""
        plan = wait_plan(wait, poll_interval, download_to)
        return self._run(resume_with_plan, pending, plan, cancel=cancel, on_progress=on_progress)

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
        """Run many loads from a manifest (a YAML path, a list of mappings with
        ``load_files``' argument names, or a ``BatchPlan``), journaled so that running
        it again is safe; ``concurrency`` loads at once (1-64) share this client's
        token cache and connections; ``cancel`` and ``on_progress`` as in ``load_files``.
        Returns the ``BatchReport`` (a failed entry does not raise: run again to
        retry). ``InputError`` for a bad manifest, before any request, or a journal in
        use. See ``docs/unattended.md``."""
        from runway_client._batch import run_batch

        if isinstance(self.transport, RequestsTransport) and isinstance(concurrency, int):
            # each load may upload its files ``upload_concurrency`` at once
            self.transport.grow_pool(concurrency * self.config.upload_concurrency)
        return self._run(
            run_batch,
            manifest,
            journal=journal,
            concurrency=concurrency,
            skip_invalid=skip_invalid,
            cancel=cancel,
            on_progress=on_progress,
        )

    def verify_token(self) -> tuple[str, ...]:
        """The partner codes this client's token is valid for (``()`` for none)."""
        return self._run(check_token)

    def list_output_sets(
        self,
        *,
        tenant_code: str | None = None,
        school_year: str | int | None = None,
        sent_to_ods: bool | None = None,
        created_after: datetime | None = None,
        bundle_name: str | None = None,
    ) -> tuple[OutputSet, ...]:
        """The output sets of this partner's successful runs, oldest first, filtered
        (``created_after``: an aware ``datetime``). ``InputError`` for a bad filter."""
        query = _query(
            partner_code=self.config.partner_code,
            tenant_code=tenant_code,
            school_year=school_year,
            sent_to_ods=sent_to_ods,
            created_after=created_after,
            bundle_name=bundle_name,
        )
        return self._run(find_output_sets, _unwrap(query))

    def get_download_links(self, output_set: OutputSet | str) -> dict[str, str]:
        """File name -> presigned GET URL (valid up to 1 hour) for an output set or its uid."""
        return dict(self._run(download_links, output_set).links)

    def download(
        self,
        output_set: OutputSet | str,
        dest_dir: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> tuple[DownloadReceipt, ...]:
        """Download every file of an output set (or its uid) into ``dest_dir``: each is
        written to a temporary name, checked and renamed; one with the same size is
        kept unless ``overwrite``. One ``DownloadReceipt`` per file."""
        return self._run(fetch_outputs, output_set, dest_dir, overwrite=overwrite)

    def wait_for_outputs(
        self,
        job_uid: str,
        *,
        timeout: float = DEFAULT_WAIT_SECONDS,
        poll_interval: float = DEFAULT_POLL_SECONDS,
        created_after: datetime | None = None,
    ) -> OutputSet:
        """Wait until the run of ``job_uid`` has an output set (``timeout``,
        ``poll_interval``: seconds) and return it; else ``OutputsNotReadyError``."""
        query = _unwrap(_query(partner_code=self.config.partner_code, created_after=created_after))
        return self._run(
            wait_for_outputs, job_uid, query=query, timeout=timeout, poll_interval=poll_interval
        )

    def _run(
        self, flow: Callable[..., Result[_T, RunwayError]], *args: object, **kwargs: object
    ) -> _T:
        """Run ``flow`` with this client's transport, settings and token cache; return
        its value or raise its error."""
        return self._settle(
            flow(self.transport, self.config, *args, token_source=self.token_cache, **kwargs)
        )

    def _settle(self, result: Result[_T, RunwayError]) -> _T:
        """The value of ``result``, or raise its ``RunwayError`` (the very object)."""
        return _unwrap(result)

    def close(self) -> None:
        """Close the HTTP session (if this client made it)."""
        if self._owns_transport and isinstance(self.transport, RequestsTransport):
            self.transport.close()

    def __enter__(self) -> RunwayClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _unwrap(result: Result[_T, RunwayError]) -> _T:
    """The value, or raise the ``RunwayError`` itself (with no chained cause)."""
    if isinstance(result, Failure):
        raise result.failure()
    return result.unwrap()
