"""The Runway External API v1 as a WSGI app (CONTRACT.md "Endpoints").

Every route needs ``Authorization: Bearer <token>`` and one scope; the guard answers
401 ``No token`` / ``Invalid token`` and 403 ``Token missing scope claim`` /
``Insufficient scopes``. Errors are ``{"statusCode", "error", "message"}`` JSON.
To add a route, add a ``Rule`` and an ``_Route`` to ``ExternalApi._routes``.

Each request on a route is counted and may meet an injected fault (``faults.py``): a
``status`` fault answers before the guard, doing nothing; ``stall`` and
``reset_before_answer`` act after the route's handler ran (a job created, a start
recorded), so the work is done even though the answer is late or lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from runway_client.sandbox.catalog import Bundle
from runway_client.sandbox.faults import FaultPlan, after_handling
from runway_client.sandbox.jobs import JobStore, SandboxJob, new_job
from runway_client.sandbox.output_routes import OutputSetRoutes
from runway_client.sandbox.output_sets import OutputSetStore
from runway_client.sandbox.presign import Presigner
from runway_client.sandbox.replies import (
    UUID_PATTERN,
    Caller,
    api_error,
    fault_message,
    json_response,
)
from runway_client.sandbox.tokens import (
    InvalidToken,
    TokenAuthority,
    client_of,
    partners_of,
    scopes_of,
)
from runway_client.sandbox.validation import check_bundle_inputs, parse_job_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

API_PREFIX = "/api/v1"
MAX_JSON_BODY = 1024 * 1024
_EXECUTOR_FAILS = "executor_fails"
__all__ = ["API_PREFIX", "ApiSettings", "Caller", "ExternalApi", "api_error", "json_response"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What the instance is configured with (CONTRACT.md "Validation order", rules 3-7).

    ``partner_code``: the one partner it knows; ``tenants``: that partner's tenants;
    ``school_years``: enabled end years ("2026"); ``bundles``: enabled bundles by path;
    ``url_lifetime``: seconds an upload URL lives; ``download_url_lifetime``: seconds a
    download link lives.
    """

    partner_code: str
    tenants: frozenset[str]
    school_years: frozenset[str]
    bundles: Mapping[str, Bundle]
    url_lifetime: float
    download_url_lifetime: float = 3600.0


Handler = Callable[[Request, Caller, Mapping[str, str]], Response]


@dataclass(frozen=True, slots=True)
class _Route:
    scope: str
    handler: Handler
    fault_route: str


class ExternalApi:
    """The WSGI app of the API server: records jobs in ``jobs``, signs upload URLs.

    ``outputs``: the output sets listed and linked; ``faults``: injected faults;
    ``on_start``: called with a job's uid and run number once a start is accepted (it
    carries the run out).
    """

    def __init__(
        self,
        *,
        tokens: TokenAuthority,
        jobs: JobStore,
        presigner: Presigner,
        settings: ApiSettings,
        outputs: OutputSetStore | None = None,
        faults: FaultPlan | None = None,
        on_start: Callable[[str, int], None] = lambda uid, run: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tokens = tokens
        self._jobs = jobs
        self._presigner = presigner
        self._settings = settings
        self._faults = FaultPlan() if faults is None else faults
        self._on_start = on_start
        self._now = now
        output_routes = OutputSetRoutes(
            outputs=OutputSetStore() if outputs is None else outputs,
            presigner=presigner,
            partner_code=settings.partner_code,
            link_lifetime=settings.download_url_lifetime,
            now=now,
        )
        self._map = Map(
            [
                Rule(f"{API_PREFIX}/token/verify", endpoint="verify_token", methods=["POST"]),
                Rule(f"{API_PREFIX}/jobs", endpoint="create_job", methods=["POST"]),
                Rule(f"{API_PREFIX}/jobs/<uid>/start", endpoint="start_job", methods=["POST"]),
                Rule(f"{API_PREFIX}/output-sets", endpoint="output_sets", methods=["GET"]),
                Rule(
                    f"{API_PREFIX}/output-sets/<uid>/download-links",
                    endpoint="download_links",
                    methods=["POST"],
                ),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._routes: dict[str, _Route] = {
            "verify_token": _Route("create:jobs", self._verify_token, "verify"),
            "create_job": _Route("create:jobs", self._create_job, "create_job"),
            "start_job": _Route("create:jobs", self._start_job, "start"),
            "output_sets": _Route("read:jobs", output_routes.list_sets, "output_sets"),
            "download_links": _Route(
                "read:jobs:output-files", output_routes.download_links, "download_links"
            ),
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (WSGI); ``AbortConnection`` when a fault resets it."""
        response = self._dispatch(Request(environ))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        try:
            endpoint, arguments = self._map.bind_to_environ(request.environ).match()
        except NotFound:
            return api_error(404, f"Cannot {request.method} {request.path}")
        except MethodNotAllowed:
            return api_error(405, f"Cannot {request.method} {request.path}")
        route = self._routes[str(endpoint)]
        fault = self._faults.take(route.fault_route)
        if fault is not None and fault.kind == "status":
            assert fault.status is not None
            response = api_error(fault.status, fault_message(fault.status))
            response.headers.extend(fault.retry_after_headers())
            return response
        arguments = {k: str(v) for k, v in arguments.items()}
        if fault is not None and fault.kind == "executor_fails":
            arguments[_EXECUTOR_FAILS] = "yes"  # no route has a URL part of that name
        response = self._handle(request, route, arguments)
        after_handling(fault)
        return response

    def _handle(self, request: Request, route: _Route, arguments: Mapping[str, str]) -> Response:
        caller = self._authorize(request, route.scope)
        if isinstance(caller, Response):
            return caller
        return route.handler(request, caller, arguments)

    def _authorize(self, request: Request, scope: str) -> Caller | Response:
        """The caller, or the guard's 401/403 (CONTRACT.md "Error body")."""
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return api_error(401, "No token")
        try:
            claims = self._tokens.verify(token)
        except InvalidToken:
            return api_error(401, "Invalid token")
        scopes = scopes_of(claims)
        if scopes is None:
            return api_error(403, "Token missing scope claim")
        if scope not in scopes:
            return api_error(403, "Insufficient scopes")
        return Caller(claims=claims, scopes=scopes, partners=partners_of(scopes))

    def _verify_token(self, request: Request, caller: Caller, _: Mapping[str, str]) -> Response:
        """``POST /token/verify``: 201 ``text/html`` with a bare sentence naming the token's
        partners, not JSON, as the real server answers (CONTRACT.md "Endpoints", observed)."""
        partners = caller.partners
        if not partners:
            text = (
                "Token is valid for no partners. "
                'No scope of the form "partner:partner-code" was found on the token.'
            )
        elif len(partners) == 1:
            text = f"Token is valid for partner: {partners[0]}"
        else:
            text = f"Token is valid for partners: {', '.join(partners)}"
        return Response(text, status=201, content_type="text/html; charset=utf-8")

    def _read_json(self, request: Request) -> object:
        """The JSON body; ``{}`` when absent or not JSON-typed (as Express' json parser)."""
        if not request.is_json:
            return {}
        if (request.content_length or 0) > MAX_JSON_BODY:
            raise _BodyError(413, "request entity too large")
        data = request.get_data(cache=False)
        if not data.strip():
            return {}
        try:
            return json.loads(data)
        except ValueError as error:
            raise _BodyError(400, [f"The request body is not valid JSON: {error}"]) from error

    def _create_job(self, request: Request, caller: Caller, _: Mapping[str, str]) -> Response:
        """``POST /jobs``: the eight checks of CONTRACT.md "Validation order", then 201."""
        try:
            raw = self._read_json(request)
        except _BodyError as error:
            return api_error(error.status, error.message)
        body = parse_job_body(raw)
        if isinstance(body, list):
            return api_error(400, body)
        client_id = client_of(caller.claims)
        if client_id is None:
            return api_error(403, "Token must include a client_id or azp claim")
        settings = self._settings
        if body.partner not in caller.partners or body.partner != settings.partner_code:
            return api_error(403, f"Invalid partner code: {body.partner}")
        if body.tenant not in settings.tenants:
            return api_error(400, f"Invalid tenant. {body.partner}/{body.tenant} does not exist")
        bundle = settings.bundles.get(body.bundle)
        if bundle is None:
            return api_error(400, f"Bundle not found or not enabled for partner: {body.bundle}")
        if not 2000 <= int(body.school_year) <= 2099:
            return api_error(400, f"Invalid school year: {body.school_year}")
        if body.school_year not in settings.school_years:
            return api_error(400, f"School year is not enabled: {body.school_year}")
        problem = check_bundle_inputs(bundle, body.files, body.params)
        if problem is not None:
            return api_error(400, problem)

        uid = str(uuid.uuid4())
        created_at = self._now()
        object_keys = {
            key: f"{body.partner}/{body.tenant}/{uid}/{key}/{name}"
            for key, name in body.files.items()
        }
        job = new_job(
            uid=uid,
            partner=body.partner,
            tenant=body.tenant,
            bundle=body.bundle,
            school_year=body.school_year,
            files=body.files,
            params=body.params,
            created_at=created_at,
            client_id=client_id,
        )
        urls = {
            key: self._presigner.url(object_key, created_at, settings.url_lifetime)
            for key, object_key in object_keys.items()
        }
        self._jobs.add(job, object_keys)
        return json_response(201, {"uid": uid, "uploadUrls": urls})

    def _start_job(
        self, request: Request, caller: Caller, arguments: Mapping[str, str]
    ) -> Response:
        """``POST /jobs/<uid>/start``: 202 and a new run once every file is uploaded and
        non-empty and no run is under way; 500 ``Failed to start job`` (the run recorded
        failed) under an ``executor_fails`` fault."""
        uid = arguments["uid"]
        if not UUID_PATTERN.fullmatch(uid):
            return api_error(400, "Validation failed (uuid is expected)")
        job = self._jobs.get(uid.lower())
        if job is None or job.partner not in caller.partners:
            return api_error(404, f"Job not found: {uid}")
        if not _all_uploaded(job):
            names = ", ".join(job.files.values())
            return api_error(400, f"Some expected files were not found. Expected files: {names}")
        executor_fails = _EXECUTOR_FAILS in arguments
        run = self._jobs.start_run(job.uid, failed=executor_fails)
        if run is None:
            return api_error(400, f"Job already in progress: {uid}")
        if executor_fails:
            return api_error(500, f"Failed to start job {uid}")
        self._on_start(job.uid, run)
        return Response(b"", status=202)


def _all_uploaded(job: SandboxJob) -> bool:
    return all(job.uploaded_bytes.get(key, 0) > 0 for key in job.files)


class _BodyError(Exception):
    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
