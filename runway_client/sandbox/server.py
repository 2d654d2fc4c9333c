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
from runway_client.sandbox.faults import AbortConnection, Fault, FaultPlan, reset_socket
from runway_client.sandbox.jobs import JobStore, SandboxJob
from runway_client.sandbox.output_sets import OutputSetStore, SandboxOutputSet
from runway_client.sandbox.presign import Presigner
from runway_client.sandbox.runs import RunSimulator, output_directory
from runway_client.sandbox.storage import StorageApp, UploadPace, UploadRecord, object_path
from runway_client.sandbox.tokens import TokenAuthority

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BUCKET = "runway-sandbox"
DEFAULT_SCHOOL_YEARS = ("2024", "2025", "2026", "2027")
_POLL_INTERVAL = 0.02


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log (URLs carry signatures).

    An app raising ``AbortConnection`` (an injected fault) gets the connection reset:
    werkzeug reports it here as a dropped connection; the handler closes its reader and
    the socket with ``SO_LINGER`` 0 (an RST, no answer) and serves nothing more on it.
    Only this request's thread is affected; the server keeps serving.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""

    def connection_dropped(
        self, error: BaseException, environ: WSGIEnvironment | None = None
    ) -> None:
        """Reset the connection when an app asked for it (``AbortConnection``)."""
        if isinstance(error, AbortConnection):
            self.close_connection = True
            self.rfile.close()  # the socket only really closes once its reader is closed
            reset_socket(self.connection)


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

    Runs (CONTRACT.md "Output sets"; one per accepted start, a start after a run ended
    makes a new one; ``runs`` lists them): ``run_delay`` seconds after a start the run fails
    when one of the job's file names is in ``failing_file_names``, else succeeds with an
    output set (``sentToOds`` = ``sent_to_ods``) whose files are downloadable through links
    living ``download_url_lifetime`` seconds, stored gzip-compressed (served with
    ``Content-Encoding: gzip``) when ``gzip_outputs``.

    Faults: ``inject``/``clear_faults``/``received`` (see ``faults.py``); uploads:
    ``throttle_uploads`` (a per-connection rate) and ``uploads`` (what each PUT was).
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
        run_delay: float = 0.2,
        failing_file_names: Iterable[str] = (),
        sent_to_ods: bool = True,
        download_url_lifetime: float = 3600.0,
        gzip_outputs: bool = False,
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
        self.run_delay = run_delay
        self.failing_file_names: frozenset[str] = frozenset(failing_file_names)
        self.sent_to_ods = sent_to_ods
        self.download_url_lifetime = download_url_lifetime
        self.gzip_outputs = gzip_outputs
        self._settings = ApiSettings(
            partner_code=partner_code,
            tenants=frozenset(tenants),
            school_years=frozenset(school_years),
            bundles={path: catalog[path] for path in enabled},
            url_lifetime=upload_url_lifetime,
            download_url_lifetime=download_url_lifetime,
        )
        self._storage_dir_arg = None if storage_dir is None else Path(storage_dir)
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self._storage_dir: Path | None = None
        self._jobs = JobStore()
        self._outputs = OutputSetStore()
        self._faults = FaultPlan()
        self._pace = UploadPace()
        self._runs: RunSimulator | None = None
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
        runs = RunSimulator(
            jobs=self._jobs,
            outputs=self._outputs,
            directory=self._storage_dir,
            delay=self.run_delay,
            failing_names=self.failing_file_names,
            sent_to_ods=self.sent_to_ods,
            compress=self.gzip_outputs,
        )
        api.server.app = ExternalApi(
            tokens=tokens,
            jobs=self._jobs,
            presigner=presigner,
            settings=self._settings,
            outputs=self._outputs,
            faults=self._faults,
            on_start=runs.schedule,
        )
        auth.server.app = TokenEndpoint(
            tokens=tokens,
            client=ClientRegistration(
                client_id=self.client_id,
                client_secret=self.client_secret,
                granted_scopes=self.granted_scopes,
                token_lifetime=self.token_lifetime,
            ),
            faults=self._faults,
        )
        storage.server.app = StorageApp(
            presigner=presigner,
            jobs=self._jobs,
            directory=self._storage_dir,
            max_object_size=self.max_object_size,
            url_lifetime=self.upload_url_lifetime,
            outputs=self._outputs,
            faults=self._faults,
            pace=self._pace,
        )
        self._runs = runs
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
        runs, self._runs = self._runs, None
        if runs is not None:
            runs.close()
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

    def output_sets(self) -> tuple[SandboxOutputSet, ...]:
        """Every output set (successful runs only), ``created_at`` ascending (frozen snapshots)."""
        return self._outputs.all()

    def output_path(self, set_uid: str, file_name: str) -> Path:
        """Where output set ``set_uid``'s file ``file_name`` is stored on disk.

        The bytes are gzip-compressed when the sandbox was made with ``gzip_outputs``.
        """
        return output_directory(self.storage_dir, set_uid) / file_name

    def runs(self, job_uid: str) -> tuple[str, ...]:
        """The state of each run of job ``job_uid``, oldest first (``len`` counts them).

        One run per accepted start (CONTRACT.md, start): ``"running"``, ``"succeeded"``
        or ``"failed"``; ``()`` before the first start. ``KeyError`` for an unknown job.
        """
        return self.job(job_uid).runs

    def wait_for_run(self, job_uid: str, timeout: float = 5.0) -> str:
        """The job's ``run_state`` once its latest run has finished, or after ``timeout`` seconds.

        ``"succeeded"``/``"failed"``, or ``"running"``/``"not_started"`` on timeout;
        ``KeyError`` for an unknown job.
        """
        return self._jobs.wait_for_run(job_uid, timeout)

    # -- faults --------------------------------------------------------------------------

    def inject(
        self,
        route: str,
        fault: str,
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
        seconds: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests on ``route`` with ``fault`` (after earlier ones).

        ``route``: ``token``, ``verify``, ``create_job``, ``start``, ``output_sets``,
        ``download_links``, ``upload``, ``download``. ``fault``: ``status`` (needs
        ``status``; ``retry_after`` adds a ``Retry-After`` header), ``slow_down``
        (storage), ``stall`` (needs ``seconds``), ``reset_before_answer``,
        ``reset_mid_body`` (storage), ``expire`` (token, storage), ``executor_fails``
        (start: 500 ``Failed to start job <uid>``, the run recorded failed). What each does on each
        route: ``faults.py``. ``ValueError`` for an unknown or inapplicable combination.
        """
        spec = Fault(fault, status=status, retry_after=retry_after, seconds=seconds)
        self._faults.inject(route, spec, times=times)

    def throttle_uploads(self, bytes_per_second: float | None) -> None:
        """Read each upload body (each connection) no faster than ``bytes_per_second``
        from now on, as S3 limits each stream; ``None`` turns it off."""
        self._pace.set(bytes_per_second)

    def uploads(self) -> tuple[UploadRecord, ...]:
        """Every PUT that reached the storage with a valid signature, as it saw it: object
        key, ``Content-Length``, when its body began and ended (``time.monotonic()``),
        whether it was stored; in the order they ended."""
        return self._pace.records()

    def clear_faults(self) -> None:
        """Drop every fault not yet used (``received`` counts are kept)."""
        self._faults.clear()

    def received(self, route: str) -> int:
        """Requests received on ``route`` so far, those a fault answered included."""
        return self._faults.received(route)

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
