"""The wire format, pure: per endpoint, build an ``HttpRequest`` and decode an ``HttpResponse``.

No I/O here and no clock: callers pass ``now``. Every decoder returns
``Success(value)`` or ``Failure(RunwayError)``; an error status maps to its
class in ``errors.error_for_status`` and keeps the server's message verbatim.
Sources: CONTRACT.md ("Token", "Endpoints", "Error body", "Presigned S3 URLs").

>>> from runway_client.config import make_config
>>> cfg = make_config(runway_base_url="https://api.x.org/api/v1", auth_base_url="https://a.auth0.com",
...                   client_id="id", client_secret="s", partner_code="ea").unwrap()
>>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
>>> start_request(cfg, token, "6f1c").url
'https://api.x.org/api/v1/jobs/6f1c/start'
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

import msgspec
from returns.result import Failure, Result, Success

from runway_client.config import RunwayConfig
from runway_client.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ProtocolError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    Step,
    StorageError,
    error_for_status,
)
from runway_client.models import Job, JobRequest, JobSpec, Token
from runway_client.redaction import Secret, redact_text
from runway_client.transport import HttpRequest, HttpResponse

__all__ = [
    "UPLOAD_CONTENT_TYPE",
    "api_error",
    "create_job_request",
    "decode_create_job",
    "decode_start",
    "decode_token",
    "decode_upload",
    "load_scopes",
    "start_request",
    "token_request",
    "upload_headers",
]

UPLOAD_CONTENT_TYPE: Final = "application/octet-stream"
"""The Content-Type Runway signs into its presigned PUT URLs (CONTRACT.md)."""

_JSON: Final = "application/json"
_MAX_SHOWN: Final = 300


def load_scopes(partner_code: str) -> tuple[str, ...]:
    """The scopes a load needs: create + start (CONTRACT.md, "Token").

    >>> load_scopes("ea")
    ('create:jobs', 'partner:ea')
    """
    return ("create:jobs", f"partner:{partner_code}")


# ---------------------------------------------------------------- token


def token_request(config: RunwayConfig, scopes: tuple[str, ...]) -> HttpRequest:
    """``POST {token_url}``, form-encoded client credentials (RFC 6749 section 4.4).

    The body holds the client secret, URL-encoded; ``HttpRequest``'s repr hides it.
    """
    form = [
        ("grant_type", "client_credentials"),
        ("client_id", config.client_id),
        ("client_secret", config.client_secret.reveal()),
        ("audience", config.audience),
        ("scope", " ".join(scopes)),
    ]
    return HttpRequest(
        method="POST",
        url=config.token_url,
        headers=(
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", _JSON),
        ),
        body=urlencode(form).encode("ascii"),
    )


class _TokenBody(msgspec.Struct, frozen=True):
    """RFC 6749 section 5.1; unknown fields (``refresh_expires_in`` ...) are ignored."""

    access_token: str
    token_type: str
    expires_in: float
    scope: str | None = None

    def __repr__(self) -> str:
        return f"_TokenBody(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


class _OAuthError(msgspec.Struct, frozen=True):
    error: str = ""
    error_description: str = ""


_TOKEN_DECODER: Final = msgspec.json.Decoder(_TokenBody)
_OAUTH_ERROR_DECODER: Final = msgspec.json.Decoder(_OAuthError)


def decode_token(
    response: HttpResponse, *, scopes: tuple[str, ...], now: float, secret: Secret | None = None
) -> Result[Token, RunwayError]:
    """The ``Token`` of a 200 answer, or the error the identity provider gave.

    ``token_type`` must be ``bearer`` in any case; ``scope`` may be absent (then
    the scopes asked for are assumed). ``now`` is ``time.time()``. 400/401 are
    ``AuthenticationError``, 403 ``PermissionDeniedError``, 429 and 503
    ``ServiceUnavailableError``, other 5xx ``ServerError``. ``secret`` is masked
    out of any text the server echoes.
    """
    if response.status != 200:
        return Failure(_token_error(response, secret))
    try:
        body = _TOKEN_DECODER.decode(response.body)
    except msgspec.DecodeError as exc:
        return Failure(
            ProtocolError(f"the token endpoint's answer is not a token: {exc}", step="authorize")
        )
    if body.token_type.lower() != "bearer":
        return Failure(
            ProtocolError(
                f"the token endpoint issued a {body.token_type!r} token; Runway takes Bearer tokens",
                step="authorize",
            )
        )
    if not body.access_token or body.expires_in <= 0:
        return Failure(
            ProtocolError(
                "the token endpoint's answer has an empty token or no lifetime", step="authorize"
            )
        )
    return Success(
        Token(
            access_token=Secret(body.access_token),
            token_type=body.token_type,
            expires_at=now + body.expires_in,
            scope=tuple(body.scope.split()) if body.scope else scopes,
        )
    )


def _token_error(response: HttpResponse, secret: Secret | None) -> RunwayError:
    secrets = (secret.reveal(),) if secret is not None else ()
    try:
        body = _OAUTH_ERROR_DECODER.decode(response.body)
        said = ": ".join(part for part in (body.error, body.error_description) if part)
        code = body.error or None
    except msgspec.DecodeError:
        said, code = _shown_text(response.body), None
    said = redact_text(said, secrets) or "(no message)"
    status = response.status
    if status in (400, 401):
        return AuthenticationError(
            f"the identity provider refused the client credentials: {said}; check client_id, "
            "client_secret and the token URL",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
        )
    if status == 403:
        return PermissionDeniedError(
            f"the identity provider refused the token request: {said}; check that the client is "
            "authorised for this Runway instance (audience) and granted the scopes asked for",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
        )
    if status in (429, 503):
        return ServiceUnavailableError(
            f"the identity provider is busy or rate-limiting (HTTP {status}): {said}; try again later",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
        )
    if status >= 500:
        return ServerError(
            f"the identity provider failed: {said}",
            step="authorize",
            status=status,
            server_message=said,
        )
    return ProtocolError(
        f"unexpected answer from the token endpoint: {said}", step="authorize", status=status
    )


# ---------------------------------------------------------------- API errors


class _ApiErrorBody(msgspec.Struct, frozen=True):
    message: str | list[str] | None = None
    error: str | None = None
    statusCode: int | None = None


_API_ERROR_DECODER: Final = msgspec.json.Decoder(_ApiErrorBody)


def api_error(response: HttpResponse, *, step: Step, job_uid: str | None = None) -> RunwayError:
    """The ``RunwayError`` for an API error answer, keeping the server's message.

    >>> e = api_error(HttpResponse(status=400, body=b'{"statusCode":400,"message":["a","b"]}'),
    ...               step="create_job")
    >>> type(e).__name__, e.server_message, e.message
    ('RequestRejectedError', ('a', 'b'), 'a; b')
    """
    server_message: str | tuple[str, ...] | None
    try:
        body = _API_ERROR_DECODER.decode(response.body)
        raw = body.message
        server_message = tuple(raw) if isinstance(raw, list) else raw
        text = "; ".join(raw) if isinstance(raw, list) else (raw or body.error or "")
    except msgspec.DecodeError:
        server_message = None
        text = _shown_text(response.body)
    text = redact_text(text) or f"HTTP {response.status} with no message"
    cls = error_for_status(response.status)
    if response.status < 400:
        text = f"unexpected HTTP {response.status}: {text}"
    return cls(
        text, step=step, job_uid=job_uid, status=response.status, server_message=server_message
    )


def _shown_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    text = re.sub(r"<[^>]+>", " ", text) if text.startswith("<") else text
    text = " ".join(html.unescape(text).split())
    return text[:_MAX_SHOWN] + ("..." if len(text) > _MAX_SHOWN else "")


def _api_url(config: RunwayConfig, *segments: str) -> str:
    return config.runway_base_url + "".join("/" + quote(s, safe="") for s in segments)


def _api_headers(token: Token, *, json_body: bool) -> tuple[tuple[str, str], ...]:
    headers = (("Authorization", token.authorization), ("Accept", _JSON))
    return (*headers, ("Content-Type", _JSON)) if json_body else headers


# ---------------------------------------------------------------- POST /jobs


def create_job_request(config: RunwayConfig, token: Token, spec: JobSpec) -> HttpRequest:
    """``POST {base}/jobs`` with the ``JobRequest`` body built from ``spec``."""
    return HttpRequest(
        method="POST",
        url=_api_url(config, "jobs"),
        headers=_api_headers(token, json_body=True),
        body=msgspec.json.encode(JobRequest.from_spec(spec)),
    )


class _CreatedJob(msgspec.Struct, frozen=True, rename="camel"):
    uid: str
    upload_urls: dict[str, str]


_CREATED_DECODER: Final = msgspec.json.Decoder(_CreatedJob)


def decode_create_job(
    response: HttpResponse, spec: JobSpec, *, now: datetime
) -> Result[Job, RunwayError]:
    """The ``Job`` of a 201 answer; one absolute upload URL per file key is required."""
    if not 200 <= response.status < 300:
        return Failure(api_error(response, step="create_job"))
    try:
        body = _CREATED_DECODER.decode(response.body)
    except msgspec.DecodeError as exc:
        return Failure(
            ProtocolError(f"POST /jobs answered an unexpected body: {exc}", step="create_job")
        )
    expected = {f.key for f in spec.files}
    if set(body.upload_urls) != expected:
        return Failure(
            ProtocolError(
                f"Runway created job {body.uid} but returned upload URLs for "
                f"{sorted(body.upload_urls)} instead of {sorted(expected)}",
                step="create_job",
                job_uid=body.uid,
            )
        )
    for key, url in body.upload_urls.items():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return Failure(
                ProtocolError(
                    f"the upload URL for {key} is not an absolute http(s) URL",
                    step="create_job",
                    job_uid=body.uid,
                )
            )
    return Success(Job(uid=body.uid, upload_urls=dict(body.upload_urls), spec=spec, created_at=now))


# ---------------------------------------------------------------- S3 PUT


def upload_headers() -> dict[str, str]:
    """Headers of a presigned PUT besides Content-Length: the signed Content-Type."""
    return {"Content-Type": UPLOAD_CONTENT_TYPE}


_XML_CODE: Final = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE: Final = re.compile(r"<Message>([^<]*)</Message>")

_STORAGE_HINTS: Final = {
    "SignatureDoesNotMatch": "the presigned URL was altered in transit or a signed header differs",
    "AccessDenied": "the upload URL is no longer accepted",
    "EntityTooLarge": "S3 takes at most 5 GiB in one upload",
    "SlowDown": "storage is throttling; try again shortly",
    "InternalError": "storage failed; try again",
    "NotImplemented": "storage refused a chunked upload",
    "MissingContentLength": "storage needs a Content-Length",
}


def decode_upload(
    response: HttpResponse, *, key: str, file_name: str, job_uid: str
) -> Result[str, RunwayError]:
    """The ``ETag`` of a 200 answer (``""`` if absent), or a ``StorageError`` with S3's code.

    An expired URL (403 ``AccessDenied`` "Request has expired") says the job can no
    longer be completed: upload URLs live one hour and cannot be re-issued
    (CONTRACT.md, "Presigned S3 URLs").
    """
    if 200 <= response.status < 300:
        return Success(response.headers.get("etag", ""))
    text = response.body.decode("utf-8", "replace")
    code_match, message_match = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    code = html.unescape(code_match.group(1)) if code_match else None
    said = html.unescape(message_match.group(1)) if message_match else _shown_text(response.body)
    hint = _STORAGE_HINTS.get(code or "", "")
    if code == "AccessDenied" and "expired" in said.lower():
        hint = (
            "the upload URLs expired (they live 1 hour); this job cannot be completed: "
            "load again to create a new job"
        )
    message = f"storage refused the upload of {key} ({file_name}): {code or 'HTTP ' + str(response.status)}"
    message += f": {redact_text(said).rstrip('.')}" if said else ""
    message += f"; {hint}" if hint else ""
    return Failure(
        StorageError(
            message,
            step="upload",
            job_uid=job_uid,
            status=response.status,
            server_message=said,
            code=code,
        )
    )


# ---------------------------------------------------------------- POST /jobs/<uid>/start


def start_request(config: RunwayConfig, token: Token, job_uid: str) -> HttpRequest:
    """``POST {base}/jobs/{uid}/start`` with an empty body."""
    return HttpRequest(
        method="POST",
        url=_api_url(config, "jobs", job_uid, "start"),
        headers=_api_headers(token, json_body=False),
    )


def decode_start(response: HttpResponse, *, job_uid: str) -> Result[None, RunwayError]:
    """``Success(None)`` for a 2xx (202 per CONTRACT.md), else the API error naming the job."""
    if 200 <= response.status < 300:
        return Success(None)
    return Failure(api_error(response, step="start", job_uid=job_uid))
