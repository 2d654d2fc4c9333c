"""The wire format, pure: per endpoint, build an ``HttpRequest`` and decode an ``HttpResponse``.

No I/O here and no clock: callers pass ``now``. Every decoder returns
``Success(value)`` or ``Failure(RunwayError)``; an error status maps to its
class in ``errors.error_for_status`` and keeps the server's message verbatim.
Sources: CONTRACT.md ("Token", "Endpoints", "Error body", "Presigned S3 URLs").

>>> from runway_client._config import make_config
>>> cfg = make_config(runway_base_url="https://api.x.org/api/v1", auth_base_url="https://a.auth0.com",
...                   client_id="id", client_secret="s", partner_code="ea").unwrap()
>>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
>>> start_request(cfg, token, "6f1c").url
'https://api.x.org/api/v1/jobs/6f1c/start'
"""

from __future__ import annotations

import email.utils
import html
import math
import re
from datetime import UTC, datetime
from typing import Final, TypedDict, TypeVar
from urllib.parse import quote, urlencode

import msgspec
from returns.result import Failure, Result, Success

from runway_client._config import RunwayConfig, transfer_url_problem
from runway_client._defaults import ASSUMED_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME
from runway_client._errors import (
    FILES_MISSING,
    JOB_ALREADY_STARTED,
    AuthenticationError,
    IntegrityError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RunwayError,
    ServerError,
    ServiceUnavailableError,
    Step,
    StorageError,
    UploadExpiredError,
    error_for_status,
)
from runway_client._models import (
    DownloadLinks,
    Job,
    JobRequest,
    JobSpec,
    OutputSet,
    OutputSetQuery,
    Token,
    is_job_uid,
)
from runway_client._redaction import Secret, redact_text
from runway_client._transport import HttpRequest, HttpResponse

__all__ = [
    "UPLOAD_CONTENT_TYPE",
    "api_error",
    "create_job_request",
    "decode_create_job",
    "decode_download",
    "decode_download_links",
    "decode_output_sets",
    "decode_start",
    "decode_token",
    "decode_upload",
    "decode_verify_token",
    "download_links_request",
    "download_scopes",
    "is_forbidden",
    "load_scopes",
    "output_sets_request",
    "read_scopes",
    "start_request",
    "token_request",
    "upload_headers",
    "verify_token_request",
]

UPLOAD_CONTENT_TYPE: Final = "application/octet-stream"
"""The Content-Type Runway signs into its presigned PUT URLs (CONTRACT.md)."""

_T = TypeVar("_T")
_JSON: Final = "application/json"
_MAX_SHOWN: Final = 300
MAX_SERVER_TEXT: Final = 2048
"""Characters of a server's own text an error keeps (``message``, ``server_message``)."""


def _server_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """A server's text as an error keeps it: secrets it echoed masked (``redact_text``),
    then cut to ``MAX_SERVER_TEXT`` characters, saying how much was left out.

    >>> _server_text("bad client_secret=hunter2")
    'bad client_secret=REDACTED'
    >>> len(_server_text("x" * 10_000)) < 2100
    True
    """
    shown = redact_text(text, secrets)
    if len(shown) <= MAX_SERVER_TEXT:
        return shown
    return f"{shown[:MAX_SERVER_TEXT]}... ({len(shown) - MAX_SERVER_TEXT} more characters)"


def _decoded(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T:
    """``decoder.decode(body)``; JSON nested too deeply for the decoder (msgspec raises
    ``RecursionError``) is a ``msgspec.DecodeError`` like any other bad body."""
    try:
        return decoder.decode(body)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply to decode") from None


def load_scopes(partner_code: str) -> tuple[str, ...]:
    """The scopes a load (create + start) and a token verify need (CONTRACT.md, "Token").

    >>> load_scopes("ea")
    ('create:jobs', 'partner:ea')
    """
    return ("create:jobs", f"partner:{partner_code}")


def read_scopes(partner_code: str) -> tuple[str, ...]:
    """The scopes listing output sets needs.

    >>> read_scopes("ea")
    ('read:jobs', 'partner:ea')
    """
    return ("read:jobs", f"partner:{partner_code}")


def download_scopes(partner_code: str) -> tuple[str, ...]:
    """The scopes asking for download links needs.

    >>> download_scopes("ea")
    ('read:jobs:output-files', 'partner:ea')
    """
    return ("read:jobs:output-files", f"partner:{partner_code}")


# ---------------------------------------------------------------- token


def token_request(config: RunwayConfig, scopes: tuple[str, ...]) -> HttpRequest:
    """``POST {token_url}``, form-encoded client credentials (RFC 6749 section 4.4).

    The body holds the client secret, URL-encoded; ``HttpRequest``'s repr hides it.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> request = token_request(config, load_scopes("ea"))
    >>> request.method, request.url
    ('POST', 'https://x.prod.us.auth0.com/oauth/token')
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
    expires_in: float | str | None = None  # RFC 6749 only recommends it; some send a string
    scope: str | None = None

    def __repr__(self) -> str:
        return f"_TokenBody(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


class _OAuthError(msgspec.Struct, frozen=True):
    error: str = ""
    error_description: str = ""


_TOKEN_DECODER: Final = msgspec.json.Decoder(_TokenBody)
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750 section 2.1: the characters of a bearer token."""
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

    >>> answer = HttpResponse(status=200, body=b'{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}')
    >>> decode_token(answer, scopes=load_scopes("ea"), now=1000.0).unwrap().expires_at
    4600.0
    >>> type(decode_token(HttpResponse(status=401), scopes=(), now=0.0).failure()).__name__
    'AuthenticationError'
    """
    if response.status != 200:
        return Failure(_token_error(response, secret))
    try:
        body = _decoded(_TOKEN_DECODER, response.body)
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
    if body.access_token and not _B64TOKEN.fullmatch(body.access_token):
        return Failure(
            ProtocolError(
                "the token endpoint issued an access token with characters a bearer token "
                "cannot have (RFC 6750 section 2.1); it was not used",
                step="authorize",
            )
        )
    if not body.access_token:
        return Failure(
            ProtocolError("the token endpoint's answer has an empty access token", step="authorize")
        )
    lifetime = _lifetime(body.expires_in)
    if lifetime is None:
        shown = repr(body.expires_in)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return Failure(
            ProtocolError(
                f"the token endpoint's answer has no usable expires_in: {shown} is not a "
                "positive number of seconds; the token was not used",
                step="authorize",
            )
        )
    return Success(
        Token(
            access_token=Secret(body.access_token),
            token_type=body.token_type,
            expires_at=now + lifetime,
            lifetime=lifetime,
            scope=tuple(body.scope.split()) if body.scope else scopes,
        )
    )


def _lifetime(expires_in: float | str | None) -> float | None:
    """``expires_in`` in seconds, at most ``MAX_TOKEN_LIFETIME``: a positive number or
    numeric string; absent means ``ASSUMED_TOKEN_LIFETIME``; anything else (zero,
    negative, NaN, text) is ``None`` (refused).

    >>> _lifetime("3600"), _lifetime(1e300), _lifetime(None), _lifetime(-1)
    (3600.0, 86400.0, 300.0, None)
    """
    if expires_in is None:
        return ASSUMED_TOKEN_LIFETIME
    try:
        seconds = float(expires_in)
    except (ValueError, OverflowError):
        return None
    if math.isnan(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_TOKEN_LIFETIME)


def _token_error(response: HttpResponse, secret: Secret | None) -> RunwayError:
    secrets = (secret.reveal(),) if secret is not None else ()
    try:
        body = _decoded(_OAUTH_ERROR_DECODER, response.body)
        said = ": ".join(part for part in (body.error, body.error_description) if part)
        code = _server_text(body.error, secrets)[:200] or None
    except msgspec.DecodeError:
        said, code = _shown_text(response.body), None
    said = _server_text(said, secrets) or "(no message)"
    status = response.status
    if status in (400, 401):
        return AuthenticationError(
            f"the identity provider refused the client credentials: {said}; check client_id, "
            "client_secret and the token URL",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
            **_request_ids(response),
        )
    if status == 403:
        advice = (
            "check runway_base_url: the audience asked for is its origin, and the identity "
            "provider knows no API by that name"
            if "service not found" in said.lower()
            else "check that the client is authorised for this Runway instance (audience) "
            "and granted the scopes asked for"
        )
        return PermissionDeniedError(
            f"the identity provider refused the token request: {said}; {advice}",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
            **_request_ids(response),
        )
    if status in (429, 503):
        kind = RateLimitError if status == 429 else ServiceUnavailableError
        return kind(
            f"the identity provider is busy or rate-limiting (HTTP {status}): {said}; try again later",
            step="authorize",
            status=status,
            server_message=said,
            code=code,
            **_retry_and_ids(response),
        )
    if status >= 500:
        return ServerError(
            f"the identity provider failed: {said}",
            step="authorize",
            status=status,
            server_message=said,
            **_retry_and_ids(response),
        )
    return ProtocolError(
        f"unexpected answer from the token endpoint: {said}",
        step="authorize",
        status=status,
        **_request_ids(response),
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
        body = _decoded(_API_ERROR_DECODER, response.body)
        raw = body.message
        server_message = (
            tuple(_server_text(m) for m in raw[:100])
            if isinstance(raw, list)
            else (_server_text(raw) if raw is not None else None)
        )
        text = "; ".join(raw) if isinstance(raw, list) else (raw or body.error or "")
    except msgspec.DecodeError:
        server_message = None
        text = _shown_text(response.body)
    text = _server_text(text) or f"HTTP {response.status} with no message"
    cls = error_for_status(response.status)
    if response.status < 400:
        text = f"unexpected HTTP {response.status}: {text}"
    return cls(
        text,
        step=step,
        job_uid=job_uid,
        status=response.status,
        server_message=server_message,
        **_retry_and_ids(response),
    )


_REQUEST_ID_HEADERS: Final = (
    "x-amz-request-id",  # S3
    "x-amzn-requestid",  # API Gateway / Lambda
    "apigw-requestid",
    "x-request-id",
    "x-auth0-requestid",  # the identity provider
)


class _Ids(TypedDict):
    request_id: str | None
    extended_request_id: str | None


class _RetryAndIds(_Ids):
    retry_after: float | None
    retry_at: float | None


def _request_ids(response: HttpResponse) -> _Ids:
    """The server's ids for this request: the first of ``_REQUEST_ID_HEADERS`` present,
    and S3's ``x-amz-id-2`` (AWS support asks for both); shown in the error's text.

    >>> _request_ids(HttpResponse(status=403, headers={"x-amz-request-id": "4B2", "x-amz-id-2": "h/Q="}))
    {'request_id': '4B2', 'extended_request_id': 'h/Q='}
    """
    found = next(
        (response.headers[name] for name in _REQUEST_ID_HEADERS if response.headers.get(name)),
        None,
    )
    return {
        "request_id": _shown_id(found),
        "extended_request_id": _shown_id(response.headers.get("x-amz-id-2")),
    }


def _shown_id(value: str | None) -> str | None:
    """A request id as kept: printable, at most 200 characters (it is server text)."""
    if not value:
        return None
    clean = "".join(ch for ch in value.strip() if ch.isprintable())[:200]
    return clean or None


def _retry_and_ids(response: HttpResponse) -> _RetryAndIds:
    return {
        "retry_after": _retry_after(response),
        "retry_at": _retry_at(response),
        **_request_ids(response),
    }


def _retry_after(response: HttpResponse) -> float | None:
    """The ``Retry-After`` header in seconds (RFC 9110 section 10.2.3), when given as
    delta-seconds; ``None`` otherwise (see ``retry_at`` for the date form).

    >>> _retry_after(HttpResponse(status=429, headers={"retry-after": "7"}))
    7.0
    """
    value = response.headers.get("retry-after", "").strip()
    if not value.isascii() or not value.replace(".", "", 1).isdigit():
        return None
    return float(value)


def _retry_at(response: HttpResponse) -> float | None:
    """The ``Retry-After`` header given as an HTTP-date, as seconds since the epoch.

    >>> _retry_at(HttpResponse(status=503, headers={"retry-after": "Sun, 29 Nov 2026 10:00:00 GMT"}))
    1795946400.0
    """
    value = response.headers.get("retry-after", "").strip()
    if not value or value.replace(".", "", 1).isdigit():
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _answer(
    response: HttpResponse, decoder: msgspec.json.Decoder[_T], *, step: Step, what: str
) -> Result[_T, RunwayError]:
    """A 2xx answer decoded with ``decoder``; an error status is ``api_error``, an
    undecodable body a ``ProtocolError`` keeping msgspec's path (``at $.uploadUrls``)."""
    if not 200 <= response.status < 300:
        return Failure(api_error(response, step=step))
    try:
        return Success(_decoded(decoder, response.body))
    except msgspec.DecodeError as exc:
        return Failure(ProtocolError(f"{what} answered an unexpected body: {exc}", step=step))


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
    """``POST {base}/jobs`` with the ``JobRequest`` body built from ``spec``.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
    >>> from runway_client._models import InputFile, parse_school_year
    >>> spec = JobSpec(partner="ea", tenant="ea", bundle="assessments/PSAT_SAT", school_year=parse_school_year("2526").unwrap(),
    ...                files=(InputFile(key="INPUT_FILE", path="/data/sat.csv", name="sat.csv", size=10),), params={"TEST_TYPE": "SAT"})
    >>> create_job_request(config, token, spec).body
    b'{"partner":"ea","tenant":"ea","bundle":"assessments/PSAT_SAT","schoolYear":"2026","files":{"INPUT_FILE":"sat.csv"},"params":{"TEST_TYPE":"SAT"}}'
    """
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


class _JustUid(msgspec.Struct, frozen=True):
    uid: str | None = None


_UID_DECODER: Final = msgspec.json.Decoder(_JustUid)


_UID_IN_TEXT: Final = re.compile(
    rb'"uid"\s*:\s*"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"'
)


def _uid_if_any(body: bytes) -> str | None:
    """The job uid (a UUID) of an answer that is otherwise broken, so the error can name
    the job: decoded if the JSON allows, else found in the text (a body nested too
    deeply, or cut short)."""
    try:
        uid = _decoded(_UID_DECODER, body).uid
    except msgspec.DecodeError:
        found = _UID_IN_TEXT.search(body)
        uid = found.group(1).decode("ascii") if found else None
    return uid if is_job_uid(uid) else None


def decode_create_job(
    response: HttpResponse, spec: JobSpec, *, now: datetime, allow_http: bool = False
) -> Result[Job, RunwayError]:
    """The ``Job`` of a 201 answer: its uid must be a UUID and there must be one upload
    URL per file key, each absolute and https unless loopback or ``allow_http``
    (``_config.transfer_url_problem``), checked before any byte is sent.

    >>> from datetime import UTC, datetime
    >>> from runway_client._models import InputFile, parse_school_year
    >>> spec = JobSpec(partner="ea", tenant="ea", bundle="assessments/PSAT_SAT", school_year=parse_school_year("2526").unwrap(),
    ...                files=(InputFile(key="INPUT_FILE", path="/data/sat.csv", name="sat.csv", size=10),), params={})
    >>> answer = HttpResponse(status=201, body=b'{"uid": "6f1c0c56-8d1e-4b8a-9c3a-3f7e2b1a0d4e", "uploadUrls": {"INPUT_FILE": "https://s3.example/x?X-Amz-Signature=abc"}}')
    >>> decode_create_job(answer, spec, now=datetime(2026, 1, 1, tzinfo=UTC)).unwrap().uid
    '6f1c0c56-8d1e-4b8a-9c3a-3f7e2b1a0d4e'
    """
    decoded = _answer(response, _CREATED_DECODER, step="create_job", what="POST /jobs")
    if not isinstance(decoded, Success):
        error = decoded.failure()
        uid = _uid_if_any(response.body) if isinstance(error, ProtocolError) else None
        return Failure(error.for_job(uid) if uid else error)
    body = decoded.unwrap()
    if not is_job_uid(body.uid):
        return Failure(
            ProtocolError(
                f"POST /jobs answered a job uid that is not a UUID ({_shown_text(body.uid.encode())!r}); "
                "nothing was uploaded: check the Runway UI for a stray job",
                step="create_job",
            )
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
        problem = transfer_url_problem(url, allow_http=allow_http)
        if problem is not None:
            return Failure(
                ProtocolError(
                    f"the upload URL for {key} {problem}; nothing was sent to it",
                    step="create_job",
                    job_uid=body.uid,
                )
            )
    return Success(Job(uid=body.uid, upload_urls=dict(body.upload_urls), spec=spec, created_at=now))


# ---------------------------------------------------------------- S3 PUT


def upload_headers() -> dict[str, str]:
    """Headers of a presigned PUT besides Content-Length: the signed Content-Type.

    >>> upload_headers()
    {'Content-Type': 'application/octet-stream'}
    """
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


_S3_ERROR_BODY: Final = re.compile(rb"<Error>\s*<Code>")


def decode_upload(
    response: HttpResponse, *, key: str, file_name: str, job_uid: str
) -> Result[str, RunwayError]:
    """The ``ETag`` of a 200 answer, or a ``StorageError`` with S3's code.

    Only S3's success counts (CONTRACT.md, "Presigned S3 URLs"): 200 with an ``ETag``.
    A 200 whose body is an S3 ``<Error>`` document is that ``StorageError``; another
    2xx, or a 200 without an ``ETag``, is a ``ProtocolError``: the upload is not
    known to have worked. An expired URL (403 ``AccessDenied`` "Request has
    expired") says the job can no longer be completed: upload URLs live one hour
    and cannot be re-issued.

    >>> decode_upload(HttpResponse(status=200, headers={"etag": '"abc"'}), key="INPUT_FILE", file_name="sat.csv", job_uid="6f1c").unwrap()
    '"abc"'
    """
    what = f"the upload of {key} ({file_name})"
    if response.status == 200 and _S3_ERROR_BODY.search(response.body[:4096]):
        return Failure(
            _storage_error(response, what=what, step="upload", job_uid=job_uid, expired_hint="")
        )
    etag = response.headers.get("etag", "").strip()
    if response.status == 200 and etag:
        return Success(etag)
    if 200 <= response.status < 300:
        return Failure(
            ProtocolError(
                f"storage answered {what} with HTTP {response.status}"
                + ("" if etag else " and no ETag")
                + "; S3 answers 200 with an ETag, so the file is not known to be stored "
                "(it will be uploaded again on resume)",
                step="upload",
                job_uid=job_uid,
                status=response.status,
            )
        )
    return Failure(
        _storage_error(
            response,
            what=f"the upload of {key} ({file_name})",
            step="upload",
            job_uid=job_uid,
            expired_hint=(
                "the upload URLs expired (they live 1 hour); this job cannot be completed: "
                "load again to create a new job"
            ),
        )
    )


def etag_matches(
    etag: str, md5: str | None, *, key: str, file_name: str, job_uid: str
) -> Result[str, RunwayError]:
    """``Success(etag)`` if S3's ``ETag`` of a single PUT is the quoted hex ``md5`` of
    the file; else an ``IntegrityError`` naming the file key and the job.

    S3 gives a single PUT's object the ETag ``"<hex MD5 of the bytes stored>"``
    (unless it is encrypted with SSE-KMS or SSE-C; a multipart upload's ETag ends
    in ``-<parts>``), so a mismatch means S3 stored other bytes than were read.

    >>> etag_matches('"900150983cd24fb0d6963f7d28e17f72"', "900150983cd24fb0d6963f7d28e17f72",
    ...              key="INPUT_FILE", file_name="a.csv", job_uid="j").unwrap()
    '"900150983cd24fb0d6963f7d28e17f72"'
    """
    said = etag.strip()
    if said.startswith("W/"):
        said = said[2:]
    if md5 is not None and said.strip('"').lower() == md5.lower():
        return Success(etag)
    return Failure(
        IntegrityError(
            f"the upload of {key} ({file_name}) in job {job_uid}: S3's ETag {etag!r} is not the MD5 of the "
            f"file ({md5}); S3 stored other bytes than were read, or the bucket encrypts "
            "with SSE-KMS/SSE-C (its ETag is then no MD5: turn verify_etag off). Load the "
            "file again",
            step="upload",
            job_uid=job_uid,
        )
    )


def _storage_error(
    response: HttpResponse, *, what: str, step: Step, job_uid: str | None, expired_hint: str
) -> StorageError:
    """A ``StorageError`` from S3's XML error answer: its ``Code`` and ``Message`` kept.

    ``expired_hint`` is what to do when the presigned URL has expired.

    >>> xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate</Message></Error>"
    >>> error = _storage_error(HttpResponse(status=503, body=xml), what="the upload", step="upload", job_uid=None, expired_hint="")
    >>> error.code, error.status
    ('SlowDown', 503)
    """
    text = response.body.decode("utf-8", "replace")
    code_match, message_match = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    code = html.unescape(code_match.group(1)) if code_match else None
    # Without <Message>, show nothing of the body: S3's XML also echoes the signature,
    # string-to-sign and canonical request.
    said = _server_text(html.unescape(message_match.group(1))) if message_match else ""
    code = _server_text(code)[:200] if code is not None else None
    hint = _STORAGE_HINTS.get(code or "", "")
    if expired_hint and code == "AccessDenied" and "expired" in said.lower():
        hint = expired_hint
    message = f"storage refused {what}: {code or 'HTTP ' + str(response.status)}"
    message += f": {redact_text(said).rstrip('.')}" if said else ""
    message += f"; {hint}" if hint else ""
    expired = step == "upload" and bool(expired_hint) and hint == expired_hint
    kind = UploadExpiredError if expired else StorageError
    return kind(
        message,
        step=step,
        job_uid=job_uid,
        status=response.status,
        server_message=redact_text(said),
        code=code,
        **_retry_and_ids(response),
    )


def is_forbidden(error: RunwayError) -> bool:
    """True for S3's 403 on a presigned URL: expired, or signed with rotated credentials.

    >>> from runway_client import StorageError
    >>> is_forbidden(StorageError("refused", step="upload", status=403)), is_forbidden(StorageError("busy", step="upload", status=503))
    (True, False)
    """
    return isinstance(error, StorageError) and error.status == 403


# ---------------------------------------------------------------- POST /jobs/<uid>/start


def start_request(config: RunwayConfig, token: Token, job_uid: str) -> HttpRequest:
    """``POST {base}/jobs/{uid}/start`` with an empty body.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
    >>> start_request(config, token, "6f1c").url
    'https://api.x-prod.runwayloader.org/api/v1/jobs/6f1c/start'
    """
    return HttpRequest(
        method="POST",
        url=_api_url(config, "jobs", job_uid, "start"),
        headers=_api_headers(token, json_body=False),
    )


_START_REFUSALS: Final = (
    ("Job already in progress", JOB_ALREADY_STARTED),
    ("Some expected files were not found", FILES_MISSING),
)


def decode_start(response: HttpResponse, *, job_uid: str) -> Result[None, RunwayError]:
    """``Success(None)`` for a 202 (CONTRACT.md), else the API error naming the job.

    Another 2xx (a proxy's ``200`` maintenance page, say) is a ``ProtocolError``: it
    does not say that Runway started the job. The one place a start's refusal is
    classified (CONTRACT.md, start): a 400 ``Job already in progress`` has
    ``code == "job_already_started"`` (the job is started), a 400 ``Some expected
    files were not found`` ``code == "files_missing"``.

    >>> decode_start(HttpResponse(status=202), job_uid="6f1c")
    <Success: None>
    >>> decode_start(HttpResponse(status=400, body=b'{"message":"Job already in progress: j"}'),
    ...              job_uid="j").failure().code
    'job_already_started'
    """
    if response.status == 202:
        return Success(None)
    if 200 <= response.status < 300:
        return Failure(
            ProtocolError(
                f"POST /jobs/{job_uid}/start answered HTTP {response.status} instead of 202 "
                f"({_shown_text(response.body) or 'no body'}); the job is not known to be "
                "started",
                step="start",
                job_uid=job_uid,
                status=response.status,
                **_request_ids(response),
            )
        )
    error = api_error(response, step="start", job_uid=job_uid)
    said = error.server_message
    code = next(
        (
            code
            for prefix, code in _START_REFUSALS
            if response.status == 400 and isinstance(said, str) and said.startswith(prefix)
        ),
        None,
    )
    return Failure(error.replace(code=code) if code else error)


# ---------------------------------------------------------------- POST /token/verify


def verify_token_request(config: RunwayConfig, token: Token) -> HttpRequest:
    """``POST {base}/token/verify`` with an empty body.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
    >>> verify_token_request(config, token).url
    'https://api.x-prod.runwayloader.org/api/v1/token/verify'
    """
    return HttpRequest(
        method="POST",
        url=_api_url(config, "token", "verify"),
        headers=_api_headers(token, json_body=False),
    )


_VERIFY_ONE: Final = re.compile(r"Token is valid for partner: (.+)")
_VERIFY_MANY: Final = re.compile(r"Token is valid for partners: (.+)")
_STRING_DECODER: Final = msgspec.json.Decoder(str)


def decode_verify_token(response: HttpResponse) -> Result[tuple[str, ...], RunwayError]:
    """The partner codes of a 201 answer, read off the server's sentence.

    The real server answers ``text/html`` with the bare sentence, not JSON
    (CONTRACT.md "Endpoints", observed); a JSON string holding it is read too.

    >>> decode_verify_token(HttpResponse(status=201, body=b'Token is valid for partner: ea')).unwrap()
    ('ea',)
    >>> decode_verify_token(HttpResponse(status=201, body=b'"Token is valid for partners: a, b"')).unwrap()
    ('a', 'b')
    >>> decode_verify_token(HttpResponse(status=201, body=b'"Token is valid for no partners. Add one."')).unwrap()
    ()
    """
    if not 200 <= response.status < 300:
        return Failure(api_error(response, step="verify_token"))
    if response.body.lstrip().startswith(b'"'):
        decoded = _answer(response, _STRING_DECODER, step="verify_token", what="POST /token/verify")
        if not isinstance(decoded, Success):
            return Failure(decoded.failure())
        text = decoded.unwrap()
    else:
        text = response.body.decode("utf-8", "replace")
    said = text.strip()
    if said.startswith("Token is valid for no partners"):
        return Success(())
    if match := _VERIFY_MANY.fullmatch(said) or _VERIFY_ONE.fullmatch(said):
        partners = tuple(p.strip() for p in match.group(1).split(","))
        if all(partners):
            return Success(partners)
    return Failure(
        ProtocolError(
            f"POST /token/verify answered an unknown sentence: {said[:_MAX_SHOWN]!r}",
            step="verify_token",
        )
    )


# ---------------------------------------------------------------- GET /output-sets


def output_sets_request(config: RunwayConfig, token: Token, query: OutputSetQuery) -> HttpRequest:
    """``GET {base}/output-sets?partner=…`` with the filters that are set.

    ``createdAfter`` is sent as strict ISO-8601 in UTC with milliseconds
    (``2026-01-02T03:04:05.000Z``); ``schoolYear`` as the end year.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> from runway_client import make_output_set_query
    >>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
    >>> query = make_output_set_query(partner_code="ea", tenant_code="ea", school_year="2526", sent_to_ods=True).unwrap()
    >>> output_sets_request(config, token, query).url
    'https://api.x-prod.runwayloader.org/api/v1/output-sets?partner=ea&tenant=ea&schoolYear=2026&sentToOds=true'
    """
    params: list[tuple[str, str]] = [("partner", query.partner)]
    if query.tenant is not None:
        params.append(("tenant", query.tenant))
    if query.school_year is not None:
        params.append(("schoolYear", query.school_year.wire))
    if query.sent_to_ods is not None:
        params.append(("sentToOds", "true" if query.sent_to_ods else "false"))
    if query.created_after is not None:
        params.append(("createdAfter", _iso_utc(query.created_after)))
    if query.bundle is not None:
        params.append(("bundle", query.bundle))
    return HttpRequest(
        method="GET",
        url=_api_url(config, "output-sets") + "?" + urlencode(params, quote_via=quote),
        headers=_api_headers(token, json_body=False),
    )


def _iso_utc(moment: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.

    >>> from datetime import timedelta, timezone
    >>> _iso_utc(datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=timezone(timedelta(hours=1))))
    '2026-01-02T03:04:05.123Z'
    """
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_OUTPUT_SETS_DECODER: Final = msgspec.json.Decoder(tuple[OutputSet, ...])


def decode_output_sets(response: HttpResponse) -> Result[tuple[OutputSet, ...], RunwayError]:
    """The output sets of a 200 answer, in the server's order (ascending ``createdAt``).

    >>> body = (b'[{"uid": "s1", "files": ["studentAssessments.jsonl"], "sentToOds": true, "createdAt": "2026-01-02T03:04:05.000Z",'
    ...         b' "jobUid": "6f1c", "partner": "ea", "tenant": "ea", "schoolYear": "2026", "bundle": "assessments/PSAT_SAT"}]')
    >>> [(s.uid, s.job_uid, s.files) for s in decode_output_sets(HttpResponse(status=200, body=body)).unwrap()]
    [('s1', '6f1c', ('studentAssessments.jsonl',))]
    """
    return _answer(response, _OUTPUT_SETS_DECODER, step="list_output_sets", what="GET /output-sets")


# ---------------------------------------------------------------- POST /output-sets/<uid>/download-links


def download_links_request(config: RunwayConfig, token: Token, set_uid: str) -> HttpRequest:
    """``POST {base}/output-sets/{uid}/download-links`` with an empty body.

    >>> from runway_client import make_config
    >>> config = make_config(runway_base_url="https://api.x-prod.runwayloader.org/api/v1", auth_base_url="https://x.prod.us.auth0.com",
    ...                      client_id="id", client_secret="s", partner_code="ea").unwrap()
    >>> token = Token(access_token=Secret("t"), token_type="Bearer", expires_at=0.0)
    >>> download_links_request(config, token, "s1").url
    'https://api.x-prod.runwayloader.org/api/v1/output-sets/s1/download-links'
    """
    return HttpRequest(
        method="POST",
        url=_api_url(config, "output-sets", set_uid, "download-links"),
        headers=_api_headers(token, json_body=False),
    )


class _Links(msgspec.Struct, frozen=True, rename="camel"):
    download_links: dict[str, str]


_LINKS_DECODER: Final = msgspec.json.Decoder(_Links)


def decode_download_links(
    response: HttpResponse, *, set_uid: str, allow_http: bool = False
) -> Result[DownloadLinks, RunwayError]:
    """The presigned GET URL of each file of a 200 answer, kept exactly as received;
    each must be absolute and https unless loopback or ``allow_http``.

    >>> body = b'{"downloadLinks": {"studentAssessments.jsonl": "https://s3.example/o?X-Amz-Signature=abc"}}'
    >>> decode_download_links(HttpResponse(status=200, body=body), set_uid="s1").unwrap().links
    {'studentAssessments.jsonl': 'https://s3.example/o?X-Amz-Signature=abc'}
    """
    decoded = _answer(response, _LINKS_DECODER, step="get_download_links", what="download-links")
    if not isinstance(decoded, Success):
        return Failure(decoded.failure())
    body = decoded.unwrap()
    for name, url in body.download_links.items():
        problem = transfer_url_problem(url, allow_http=allow_http)
        if problem is not None:
            return Failure(
                ProtocolError(
                    f"the download link for {_shown_text(name.encode())!r} {problem}; "
                    "nothing was downloaded",
                    step="get_download_links",
                )
            )
    return Success(DownloadLinks(set_uid=set_uid, links=dict(body.download_links)))


def decode_download(response: HttpResponse, *, name: str, set_uid: str) -> Result[int, RunwayError]:
    """The byte count a 200 answer announces (``Content-Length``), or S3's error.

    Without a ``Content-Length`` a download cannot be checked for completeness, so
    it is a ``ProtocolError``.

    >>> decode_download(HttpResponse(status=200, headers={"content-length": "1948"}), name="a.jsonl", set_uid="s1")
    <Success: 1948>
    """
    if response.status != 200:
        return Failure(
            _storage_error(
                response,
                what=f"the download of {name!r} of output set {set_uid}",
                step="download",
                job_uid=None,
                expired_hint="the download link expired; ask for fresh links",
            )
        )
    length = response.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):
        return Failure(
            ProtocolError(
                f"the download of {name!r} came without a Content-Length; it cannot be checked",
                step="download",
            )
        )
    return Success(int(length))
