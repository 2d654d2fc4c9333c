"""An Auth0-like token endpoint: ``POST /oauth/token`` with the client-credentials grant.

Answers as Auth0 does (CONTRACT.md "Token"): a form that is not
``application/x-www-form-urlencoded`` -> 400 ``invalid_request``; another grant ->
400 ``unsupported_grant_type``; wrong or missing client credentials -> 401
``access_denied`` "Unauthorized"; an audience other than the instance origin (a
trailing slash included) -> 403 "Service not found: <audience>"; scopes the client was
not granted -> 403 "Client has not been granted scopes: <missing>". Success: 200
``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``.

Requests to ``/oauth/token`` count on the fault route ``token`` (``faults.py``): a
``status`` fault answers ``{"error": "temporarily_unavailable"}`` (``too_many_requests``
for 429) without issuing a token; ``expire`` makes the token issued already expired
(``expires_in`` unchanged, as if the IdP's clock were off); ``stall`` and
``reset_before_answer`` act after the token was issued.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from runway_client.sandbox.faults import Fault, FaultPlan, after_handling
from runway_client.sandbox.tokens import TokenAuthority

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
FORM_TYPE = "application/x-www-form-urlencoded"
#: The lifetime of a token issued under an ``expire`` fault: expired a minute ago.
EXPIRED_LIFETIME = -60.0


def oauth_error(status: int, error: str, description: str) -> Response:
    """An OAuth2 error: ``{"error": error, "error_description": description}``."""
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status=status, content_type="application/json; charset=utf-8")


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """The one client the IdP knows: its credentials, granted scopes and token lifetime (s)."""

    client_id: str
    client_secret: str
    granted_scopes: tuple[str, ...]
    token_lifetime: float


class TokenEndpoint:
    """The WSGI app of the auth server."""

    def __init__(
        self,
        *,
        tokens: TokenAuthority,
        client: ClientRegistration,
        faults: FaultPlan | None = None,
    ) -> None:
        self._tokens = tokens
        self._client = client
        self._faults = FaultPlan() if faults is None else faults

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (WSGI); ``AbortConnection`` when a fault resets it."""
        request = Request(environ)
        if request.path.rstrip("/") != TOKEN_PATH:
            response = oauth_error(404, "not_found", f"Not found: {request.path}")
            return response(environ, start_response)
        fault = self._faults.take("token")
        if fault is not None and fault.kind == "status":
            assert fault.status is not None
            error = "too_many_requests" if fault.status == 429 else "temporarily_unavailable"
            response = oauth_error(fault.status, error, "The service is temporarily unavailable")
            response.headers.extend(fault.retry_after_headers())
        else:
            response = self._handle(request, fault)
            after_handling(fault)
        return response(environ, start_response)

    def _handle(self, request: Request, fault: Fault | None) -> Response:
        if request.method != "POST":
            return oauth_error(405, "invalid_request", f"Method not allowed: {request.method}")
        if request.mimetype != FORM_TYPE:
            return oauth_error(
                400, "invalid_request", f"Content-Type must be {FORM_TYPE} for the token request"
            )
        form = request.form
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            return oauth_error(
                400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}"
            )
        client = self._client
        client_id = form.get("client_id", "")
        client_secret = form.get("client_secret", "")
        id_ok = hmac.compare_digest(client_id.encode(), client.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), client.client_secret.encode())
        if not (client_id and client_secret and id_ok and secret_ok):
            return oauth_error(401, "access_denied", "Unauthorized")
        audience = form.get("audience")
        if not audience:
            return oauth_error(
                403,
                "access_denied",
                "No audience parameter was provided, and no default audience has been configured",
            )
        if audience != self._tokens.audience:
            return oauth_error(403, "access_denied", f"Service not found: {audience}")
        requested = tuple(dict.fromkeys(form.get("scope", "").split()))
        missing = [scope for scope in requested if scope not in client.granted_scopes]
        if missing:
            return oauth_error(
                403, "access_denied", f"Client has not been granted scopes: {' '.join(missing)}"
            )
        scope = " ".join(requested or client.granted_scopes)
        expired = fault is not None and fault.kind == "expire"
        lifetime = EXPIRED_LIFETIME if expired else client.token_lifetime
        token = self._tokens.issue(client.client_id, scope, lifetime=lifetime)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(client.token_lifetime),
            "scope": scope,
        }
        return Response(
            json.dumps(body),
            status=200,
            content_type="application/json; charset=utf-8",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
