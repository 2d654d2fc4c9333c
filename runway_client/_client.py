"""``RunwayClient``: settings, a transport and a ``TokenCache`` around the flows.

For people who prefer exceptions: every method runs a flow and returns its value
or raises the ``RunwayError`` it returned (the very object). Nothing else lives here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TypeVar, Unpack

from returns.result import Failure, Result

from runway_client._config import Options, RunwayConfig, config_from_env, make_config
from runway_client._defaults import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POLL_SECONDS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_WAIT_SECONDS,
)
from runway_client._errors import InputError, RunwayError
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

__all__ = ["RunwayClient"]

_T = TypeVar("_T")
_TRANSPORT_SETTINGS = ("connect_timeout", "read_timeout", "verify")


class RunwayClient:
    """A client for one Runway instance, acting as one OAuth2 client for one partner.

    Args:
        runway_base_url: ``https://api.<instance>-<env>.runwayloader.org/api/v1``.
        auth_base_url: the Auth0 tenant, e.g. ``https://<name>.<env>.us.auth0.com``
            (token endpoint ``{auth_base_url}/oauth/token``); or ``token_url=``.
        client_id, client_secret: the OAuth2 client credentials Runway issued.
        partner_code: the partner the client loads for, e.g. ``"ea"``.
        token_cache: a ``TokenSource`` to share (default: a new ``TokenCache``).
        transport: a ``Transport`` to use instead of HTTP over ``requests``; it
            brings its own timeouts and TLS settings, so giving ``connect_timeout``,
            ``read_timeout`` or ``verify`` with it is an ``InputError``.
        **options: ``token_url``, ``audience``, ``connect_timeout`` and ``read_timeout``
            (seconds; 10 and 120), ``verify`` (``True`` or a CA bundle path),
            ``retry`` (a ``RetryPolicy``), ``allow_http`` (see ``make_config``).

    Raises ``InputError`` listing every malformed setting. One client may be
    shared by threads (its token cache is locked). ``from_env``, ``from_config``
    and ``with_options`` build clients too.

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
        clash = [name for name in _TRANSPORT_SETTINGS if name in options]
        if transport is not None and clash:
            raise _transport_clash(clash)
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
        self, config: RunwayConfig, transport: Transport | None, tokens: TokenSource | None
    ) -> None:
        self.config = config
        self._owns_transport = transport is None
        self.transport: Transport = transport or RequestsTransport(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            verify=config.verify,
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
        """A client for a checked ``RunwayConfig`` (``make_config``, ``config_from_env``).

        With ``transport``, the config's timeouts and ``verify`` must be the defaults
        (the transport has its own): otherwise ``InputError``.
        """
        clash = [n for n in _TRANSPORT_SETTINGS if getattr(config, n) != _DEFAULTS.get(n)]
        if transport is not None and clash:
            raise _transport_clash(clash)
        client = cls.__new__(cls)
        client._start(config, transport, token_cache)
        return client

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunwayClient:
        """A client from the ``RUNWAY_*`` environment variables (``config_from_env``);
        ``InputError`` names each variable that is missing or wrong."""
        return cls.from_config(_unwrap(config_from_env(environ)))

    def with_options(self, **changes: Unpack[Options]) -> RunwayClient:
        """A new client with some settings changed; this one is left as it is.

        It shares this client's transport and token cache unless a change needs new
        ones (timeouts or TLS: a new session; the token URL, audience or retry: a new
        cache). Example: ``client.with_options(read_timeout=600).load_files(...)``.
        """
        options = {**self.config.options(), **changes}
        config = _unwrap(make_config(**options))  # type: ignore[arg-type]
        new_transport = any(
            getattr(config, n) != getattr(self.config, n) for n in _TRANSPORT_SETTINGS
        )
        if new_transport and not self._owns_transport:
            raise _transport_clash([n for n in _TRANSPORT_SETTINGS if n in changes])
        same_tokens = not new_transport and all(
            getattr(config, n) == getattr(self.config, n)
            for n in ("token_url", "audience", "retry")
        )
        return RunwayClient.from_config(
            config,
            transport=None if new_transport else self.transport,
            token_cache=self.token_cache if same_tokens else None,
        )

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
    ) -> LoadReceipt:
        """Load ``input_files`` for ``tenant_code`` with ``bundle_name`` and start the run.

        ``input_files``: file key (the bundle's ``env_var``) -> local path;
        ``bundle_params``: e.g. ``{"TEST_TYPE": "SAT"}``; ``school_year``: ``"2526"``,
        ``"2025-2026"``, ``"2025-26"``, ``"2026"`` or ``2026`` (sent as ``"2026"``).
        ``wait``: ``True`` waits up to an hour for the run's output set, a number that
        many seconds; ``download_to`` waits, then downloads its files there;
        ``poll_interval``: seconds between looks. Returns the ``LoadReceipt``.

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
        return self._run(load_with_plan, spec, wait_plan(wait, poll_interval, download_to))

    def resume(
        self,
        pending: PendingJob | str | os.PathLike[str],
        *,
        wait: bool | float = False,
        download_to: str | os.PathLike[str] | None = None,
        poll_interval: float = DEFAULT_POLL_SECONDS,
    ) -> LoadReceipt:
        """Finish a job created but not started (a failed load's ``error.pending``, or
        the file ``runway-client`` saved it to): upload what is missing, start it.
        Within an hour of the job's creation. ``wait`` etc. as in ``load_files``."""
        return self._run(resume_with_plan, pending, wait_plan(wait, poll_interval, download_to))

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
        return _unwrap(query.bind(partial(self._flow, find_output_sets)))

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
        query = _query(partner_code=self.config.partner_code, created_after=created_after)
        look = partial(
            self._flow, wait_for_outputs, job_uid, timeout=timeout, poll_interval=poll_interval
        )
        return _unwrap(query.bind(lambda q: look(query=q)))

    def _flow(
        self, flow: Callable[..., Result[_T, RunwayError]], *args: object, **kwargs: object
    ) -> Result[_T, RunwayError]:
        """Run ``flow`` with this client's transport, settings and token cache."""
        return flow(self.transport, self.config, *args, token_source=self.token_cache, **kwargs)

    def _run(
        self, flow: Callable[..., Result[_T, RunwayError]], *args: object, **kwargs: object
    ) -> _T:
        """Run ``flow`` as ``_flow`` does; return its value or raise its error."""
        return _unwrap(self._flow(flow, *args, **kwargs))

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


_DEFAULTS: dict[str, object] = {
    "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
    "read_timeout": DEFAULT_READ_TIMEOUT,
    "verify": True,
}


def _transport_clash(names: list[str]) -> InputError:
    return InputError.of(
        [
            f"transport= brings its own timeouts and TLS settings, so {', '.join(names)} "
            "would be ignored: set them on the transport (RequestsTransport(connect_timeout=..., "
            "read_timeout=..., verify=...)) or leave transport= out"
        ]
    )


def _unwrap(result: Result[_T, RunwayError]) -> _T:
    """The value, or raise the ``RunwayError`` itself (with no chained cause)."""
    if isinstance(result, Failure):
        raise result.failure()
    return result.unwrap()
