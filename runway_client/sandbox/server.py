"""``Sandbox``: the token endpoint, the External API and the storage, served on loopback.

>>> with Sandbox() as sb:
...     sb.runway_base_url.endswith("/api/v1"), sb.token_url.endswith("/oauth/token")
(True, True)
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from runway_client.sandbox.api import API_PREFIX, ApiSettings, ExternalApi
from runway_client.sandbox.auth import TOKEN_PATH, ClientRegistration, TokenEndpoint
from runway_client.sandbox.catalog import builtin_catalog, load_registry
from runway_client.sandbox.jobs import JobStore, SandboxJob
from runway_client.sandbox.presign import Presigner
from runway_client.sandbox.storage import StorageApp, object_path
from runway_client.sandbox.tokens import TokenAuthority

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BUCKET = "runway-sandbox"
DEFAULT_SCHOOL_YEARS = ("2024", "2025", "2026", "2027")
_POLL_INTERVAL = 0.02


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log (URLs carry signatures)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


class _Served:
    """One WSGI app on a werkzeug threaded server, run by a daemon thread."""

    def __init__(self, host: str, port: int, app: WSGIApplication, name: str) -> None:
        try:
            self.server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=_QuietHandler
            )
        except SystemExit as error:  # werkzeug exits when it cannot bind; raise instead
            raise OSError(f"cannot listen on {host}:{port}") from error
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        # A short poll interval keeps stop() (which waits for the loop to notice) quick.
        self.server.serve_forever(poll_interval=_POLL_INTERVAL)

    @property
    def origin(self) -> str:
        """``http://host:port`` (IPv6 hosts bracketed)."""
        host = self.server.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class Sandbox:
    """A local Runway: Auth0-like token endpoint, External API v1 and presigned storage.

    Each runs on ``host`` in its own daemon thread; the API on ``port`` (0: any free
    port), the others on free ports. Start and stop with ``with Sandbox() as sb:`` (or
    ``start()``/``stop()``); the URL attributes exist once started.

    Keyword arguments: ``registry_path``: a ``registry.json`` to use instead of the
    built-in four bundles; ``bundles``: paths of the bundles enabled for the partner
    (default all); ``partner_code``/``tenants``/``school_years``: what the instance knows
    (CONTRACT.md "Validation order", rules 3-7); ``client_id``/``client_secret``: the
    client's credentials (default random); ``granted_scopes``: scopes the IdP grants
    (default ``create:jobs read:jobs read:jobs:output-files partner:<partner_code>``);
    ``token_lifetime``/``upload_url_lifetime``: seconds; ``storage_dir``: where uploads
    go (default a temporary directory removed on stop); ``max_object_size``: bytes per PUT.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        registry_path: str | Path | None = None,
        partner_code: str = "ea",
        tenants: Iterable[str] = ("ea",),
        school_years: Iterable[str] = DEFAULT_SCHOOL_YEARS,
        client_id: str | None = None,
        client_secret: str | None = None,
        granted_scopes: str | Iterable[str] | None = None,
        token_lifetime: float = 3600.0,
        upload_url_lifetime: float = 3600.0,
        storage_dir: str | Path | None = None,
        max_object_size: int = 5 * 1024**3,
        bundles: Iterable[str] | None = None,
    ) -> None:
        catalog = builtin_catalog() if registry_path is None else load_registry(registry_path)
        enabled = list(catalog) if bundles is None else list(bundles)
        unknown = [path for path in enabled if path not in catalog]
        if unknown:
            raise ValueError(f"bundles not in the catalog: {', '.join(unknown)}")
        if granted_scopes is None:
            granted_scopes = f"create:jobs read:jobs read:jobs:output-files partner:{partner_code}"
        scopes = granted_scopes.split() if isinstance(granted_scopes, str) else granted_scopes
        self.host = host
        self.port = port
        self.partner_code = partner_code
        self.client_id = client_id if client_id is not None else secrets.token_hex(16)
        self.client_secret = (
            client_secret if client_secret is not None else secrets.token_urlsafe(32)
        )
        self.granted_scopes: tuple[str, ...] = tuple(dict.fromkeys(scopes))
        self.token_lifetime = token_lifetime
        self.upload_url_lifetime = upload_url_lifetime
        self.max_object_size = max_object_size
        self._settings = ApiSettings(
            partner_code=partner_code,
            tenants=frozenset(tenants),
            school_years=frozenset(school_years),
            bundles={path: catalog[path] for path in enabled},
            url_lifetime=upload_url_lifetime,
        )
        self._storage_dir_arg = None if storage_dir is None else Path(storage_dir)
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self._storage_dir: Path | None = None
        self._jobs = JobStore()
        self._servers: tuple[_Served, _Served, _Served] | None = None
        self._tokens: TokenAuthority | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the three servers and serve them; returns ``self``."""
        if self._servers is not None:
            raise RuntimeError("the sandbox is already running")
        if self._storage_dir_arg is None:
            self._temporary = tempfile.TemporaryDirectory(
                prefix="runway-sandbox-", ignore_cleanup_errors=True
            )
            self._storage_dir = Path(self._temporary.name)
        else:
            self._storage_dir = self._storage_dir_arg
            self._storage_dir.mkdir(parents=True, exist_ok=True)
        started: list[_Served] = []
        try:
            # Bind first with placeholder apps so every origin is known, then wire them up.
            api = _Served(self.host, self.port, _unavailable, "runway-sandbox-api")
            started.append(api)
            auth = _Served(self.host, 0, _unavailable, "runway-sandbox-auth")
            started.append(auth)
            storage = _Served(self.host, 0, _unavailable, "runway-sandbox-storage")
            started.append(storage)
        except BaseException:
            for served in started:
                served.server.server_close()
            self._cleanup_storage()
            raise
        tokens = TokenAuthority(
            key=secrets.token_bytes(32), issuer=auth.origin + "/", audience=api.origin
        )
        presigner = Presigner(secret=secrets.token_bytes(32), origin=storage.origin, bucket=BUCKET)
        api.server.app = ExternalApi(
            tokens=tokens, jobs=self._jobs, presigner=presigner, settings=self._settings
        )
        auth.server.app = TokenEndpoint(
            tokens=tokens,
            client=ClientRegistration(
                client_id=self.client_id,
                client_secret=self.client_secret,
                granted_scopes=self.granted_scopes,
                token_lifetime=self.token_lifetime,
            ),
        )
        storage.server.app = StorageApp(
            presigner=presigner,
            jobs=self._jobs,
            directory=self._storage_dir,
            max_object_size=self.max_object_size,
            url_lifetime=self.upload_url_lifetime,
        )
        self._tokens = tokens
        self._servers = (api, auth, storage)
        for served in self._servers:
            served.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the sockets and remove a temporary storage directory."""
        servers, self._servers = self._servers, None
        if servers is not None:
            for served in servers:
                served.stop()
        self._cleanup_storage()

    def _cleanup_storage(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connection settings -------------------------------------------------------------

    def _running(self) -> tuple[_Served, _Served, _Served]:
        if self._servers is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox() as sb:`")
        return self._servers

    @property
    def audience(self) -> str:
        """The token audience: the API's origin, ``http://127.0.0.1:<port>``, no trailing slash."""
        return self._running()[0].origin

    @property
    def runway_base_url(self) -> str:
        """``http://127.0.0.1:<api port>/api/v1``."""
        return self.audience + API_PREFIX

    @property
    def auth_base_url(self) -> str:
        """``http://127.0.0.1:<auth port>``; the token endpoint is at ``/oauth/token``."""
        return self._running()[1].origin

    @property
    def token_url(self) -> str:
        """``auth_base_url + "/oauth/token"``."""
        return self.auth_base_url + TOKEN_PATH

    @property
    def storage_base_url(self) -> str:
        """``http://127.0.0.1:<storage port>/runway-sandbox`` (the bucket's URL)."""
        return f"{self._running()[2].origin}/{BUCKET}"

    @property
    def storage_dir(self) -> Path:
        """The directory uploads are written to."""
        self._running()
        assert self._storage_dir is not None
        return self._storage_dir

    # -- inspection ----------------------------------------------------------------------

    def jobs(self) -> tuple[SandboxJob, ...]:
        """Every job created so far, in creation order (frozen snapshots)."""
        return self._jobs.all()

    def job(self, uid: str) -> SandboxJob:
        """The job ``uid`` (a frozen snapshot); ``KeyError`` if there is none."""
        job = self._jobs.get(uid)
        if job is None:
            raise KeyError(uid)
        return job

    def object_path(self, uid: str, file_key: str) -> Path:
        """Where the upload of ``uid``'s ``file_key`` is (or will be) stored on disk."""
        return object_path(self.storage_dir, uid, file_key)

    def issue_token(
        self,
        scopes: str,
        *,
        lifetime: float | None = None,
        client_id_claim: bool = True,
        include_scope: bool = True,
    ) -> str:
        """A token signed as the token endpoint would, with any ``scopes`` (space-separated).

        ``lifetime``: seconds (default ``token_lifetime``; negative: already expired);
        ``client_id_claim=False``: no ``client_id`` claim; ``include_scope=False``: no
        ``scope`` claim.
        """
        self._running()
        assert self._tokens is not None
        return self._tokens.issue(
            self.client_id,
            scopes,
            lifetime=self.token_lifetime if lifetime is None else lifetime,
            client_id_claim=client_id_claim,
            include_scope=include_scope,
        )


def _unavailable(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:  # pragma: no cover - replaced before the servers start
    raise RuntimeError("the sandbox is starting")
