"""``RunwayClient``: configuration, a session and a token cache around the pipeline.

For people who prefer exceptions: every method runs a flow and either returns
its value or raises the ``RunwayError`` the flow returned (the very object).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TypeVar

import requests
from returns.result import Failure, Result, Success

from runway_client.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    RunwayConfig,
    make_config,
)
from runway_client.errors import RunwayError
from runway_client.models import JobSpec, LoadReceipt, Token
from runway_client.pipeline import load_files, prepare_job
from runway_client.steps import authorize
from runway_client.transport import RequestsTransport, Transport

__all__ = ["RunwayClient"]

_T = TypeVar("_T")

TOKEN_LEEWAY_SECONDS = 60.0
"""A cached token is renewed when it has less than this many seconds left."""


class RunwayClient:
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
        verify: TLS verification: ``True`` or a CA bundle path.
        transport: a ``Transport`` to use instead of HTTP over ``requests``.

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
        transport: Transport | None = None,
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
            )
        )
        self._owns_transport = transport is None
        self.transport: Transport = transport or RequestsTransport(
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
            verify=self.config.verify,
            session=requests.Session(),
        )
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RunwayClient(runway_base_url={c.runway_base_url!r}, token_url={c.token_url!r}, "
            f"client_id={c.client_id!r}, client_secret={c.client_secret!r}, "
            f"partner_code={c.partner_code!r})"
        )

    # ------------------------------------------------------------ tokens

    def token(self, scopes: tuple[str, ...]) -> Result[Token, RunwayError]:
        """A token for ``scopes``: the cached one while fresh, else a new one (thread-safe)."""
        key = tuple(sorted(set(scopes)))
        with self._token_lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.is_fresh(leeway=TOKEN_LEEWAY_SECONDS):
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

        Returns:
            the ``LoadReceipt``: job uid, files with bytes and SHA-256, times.
            The run's status is seen in the Runway UI.

        Raises:
            InputError: before any request, listing every bad input.
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
        return _unwrap(spec.bind(self._load_spec))

    def _load_spec(self, spec: JobSpec) -> Result[LoadReceipt, RunwayError]:
        return load_files(self.transport, self.config, spec, token_source=self.token)

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


def _unwrap(result: Result[_T, RunwayError]) -> _T:
    """The value, or raise the ``RunwayError`` itself (with no chained cause)."""
    if isinstance(result, Failure):
        raise result.failure()
    return result.unwrap()
