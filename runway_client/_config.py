"""Connection settings: ``RunwayConfig``, checked once by ``make_config``.

Rules (CONTRACT.md, "Addresses" and "Token"):

- ``runway_base_url`` is absolute http(s) and its path ends in ``/api/v<N>``
  (a trailing slash is tolerated and dropped);
- the token URL is ``{auth_base_url}/oauth/token`` (Auth0), or an explicit
  ``token_url`` (Keycloak and other OIDC issuers);
- the token *audience* is the instance origin (scheme, host, port) with no
  path and no trailing slash;
- https is required unless the host is loopback (``localhost``, 127.0.0.0/8,
  ``::1``), so credentials never cross a network in clear text.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import partial
from typing import Final, Literal, TypedDict
from urllib.parse import SplitResult, urlsplit, urlunsplit

import msgspec
from returns.result import Failure, Result, Success

from runway_client._defaults import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_UPLOAD_CONCURRENCY,
    ENVIRONMENT_VARIABLES,
    MAX_TIMEOUT,
    SETTINGS,
    Setting,
)
from runway_client._errors import InputError, RunwayError
from runway_client._files import path_exists
from runway_client._models import name_problems
from runway_client._redaction import Secret
from runway_client._retry import DEFAULT_RETRY, RetryPolicy

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "SETTINGS",
    "TRANSPORT_SETTINGS",
    "Options",
    "RunwayConfig",
    "Setting",
    "changed",
    "config_from_env",
    "for_transport",
    "make_config",
    "remake",
    "transfer_url_problem",
]


class Options(TypedDict, total=False):
    """The optional settings (``SETTINGS`` beyond the URLs and credentials), as keywords
    of ``RunwayClient``, ``RunwayClient.with_options`` and ``make_config``."""

    token_url: str | None
    audience: str | None
    connect_timeout: float
    read_timeout: float
    verify: Literal[True] | str
    retry: RetryPolicy
    allow_http: bool
    upload_sha256: bool
    verify_etag: bool
    upload_concurrency: int


_API_PATH: Final = re.compile(r"/api/v[0-9]+$")


class RunwayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to talk to one Runway instance as one client.

    Build it with ``make_config`` (which checks every field); the fields are
    already normalised: ``runway_base_url`` has no trailing slash.

    Attributes:
        runway_base_url: e.g. ``https://api.x-prod.runwayloader.org/api/v1``.
        token_url: the OAuth2 token endpoint.
        audience: the ``audience`` form field: the instance origin.
        client_id: the OAuth2 client id.
        client_secret: the OAuth2 client secret, as a ``Secret``.
        partner_code: the Runway partner this client acts for.
        connect_timeout: seconds.
        read_timeout: seconds.
        verify: TLS verification: ``True``, or a CA bundle path (never off).
        retry: when and how patiently requests are tried again, and each API call's
            total deadline, ``retry.call_timeout`` (``runway_client._retry``).
        allow_http: plain http was explicitly allowed for non-loopback hosts.
        upload_sha256: compute each uploaded file's SHA-256 for its receipt
            (``UploadReceipt.sha256``), on a thread beside the send; ``False``
            skips it (``sha256`` is then ``None``) and an upload runs at network speed.
        verify_etag: compare each PUT's ``ETag`` with the MD5 of the file as read
            for the upload; a mismatch is an ``IntegrityError``. Off by default: it
            costs an MD5 per byte, and under SSE-KMS/SSE-C encryption S3's ETag is
            not the MD5 at all (see docs/usage.md, "Performance").
        upload_concurrency: files of one job uploaded at once (1 to 32).
    """

    runway_base_url: str
    token_url: str
    audience: str
    client_id: str
    client_secret: Secret
    partner_code: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    verify: Literal[True] | str = True
    retry: RetryPolicy = DEFAULT_RETRY
    allow_http: bool = False
    upload_sha256: bool = True
    verify_etag: bool = False
    upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY

    def options(self) -> dict[str, object]:
        """Every setting as ``make_config`` keywords (``client_secret`` as its ``Secret``)."""
        return {name: getattr(self, name) for name in self.__struct_fields__}


def make_config(
    *,
    runway_base_url: str,
    client_id: str,
    client_secret: str | Secret,
    partner_code: str,
    auth_base_url: str | None = None,
    token_url: str | None = None,
    audience: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    verify: Literal[True] | str = True,
    retry: RetryPolicy = DEFAULT_RETRY,
    allow_http: bool = False,
    upload_sha256: bool = True,
    verify_etag: bool = False,
    upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY,
) -> Result[RunwayConfig, RunwayError]:
    """Check the settings and build a ``RunwayConfig``; every problem is reported at once.

    Returns ``Failure(InputError)`` naming each bad setting and what to do.
    ``allow_http=True`` permits plain http to hosts other than loopback (a
    gateway inside a private network, say): credentials then travel unencrypted.
    ``verify`` cannot turn TLS checks off (``False`` is refused); give a CA bundle path.

    >>> make_config(runway_base_url="https://api.x.org/api/v1/", auth_base_url="https://a.auth0.com",
    ...             client_id="id", client_secret="s", partner_code="ea").unwrap().audience
    'https://api.x.org'
    """
    problems: list[str] = []
    check = partial(_check_url, problems=problems, allow_http=allow_http is True)
    base = check("runway_base_url", runway_base_url)
    if base is not None and not _API_PATH.search(base.path.rstrip("/")):
        problems.append(
            f"runway_base_url {_shown(runway_base_url)!r} must end in /api/v<N>, "
            "e.g. https://api.<instance>-<env>.runwayloader.org/api/v1"
        )
    if token_url is not None and auth_base_url is not None:
        problems.append("give auth_base_url (Auth0) or token_url (another OIDC issuer), not both")
    if token_url is not None:
        tok = check("token_url", token_url)
        resolved_token_url = _unsplit(tok) if tok else ""
    elif auth_base_url is not None:
        auth = check("auth_base_url", auth_base_url)
        resolved_token_url = (
            _unsplit(auth._replace(path=auth.path.rstrip("/") + "/oauth/token")) if auth else ""
        )
    else:
        problems.append(
            "give auth_base_url (Auth0: https://<name>.<env>.us.auth0.com) "
            "or token_url (an OIDC issuer's token endpoint)"
        )
        resolved_token_url = ""
    for name, value in (("client_id", client_id), ("partner_code", partner_code)):
        problems.extend(name_problems(name, value, spaces=False))
    secret = client_secret if isinstance(client_secret, Secret) else None
    if secret is None:
        if not isinstance(client_secret, str):
            problems.append(f"client_secret must be a string, got {type(client_secret).__name__}")
        else:
            secret = Secret(client_secret)
    if secret is not None and not secret.reveal().strip():
        problems.append("client_secret must be a non-empty string")
    for name, seconds in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds <= MAX_TIMEOUT
        ):
            problems.append(
                f"{name} must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
                f"got {seconds!r}"
            )
    if audience is not None and (
        not isinstance(audience, str)
        or not audience.strip()
        or audience.endswith("/")
        or any(ch.isspace() for ch in audience)
    ):
        problems.append(
            f"audience must be a non-empty string without spaces or a trailing slash "
            f"(Auth0 rejects one), got {audience!r}"
        )
    problems.extend(_verify_problems(verify))
    if not isinstance(retry, RetryPolicy) or not 1 <= retry.attempts <= 20:
        problems.append(f"retry must be a RetryPolicy with 1 to 20 attempts, got {retry!r}")
    elif (
        isinstance(retry.call_timeout, bool)
        or not isinstance(retry.call_timeout, int | float)
        or not 0 < retry.call_timeout <= MAX_TIMEOUT
    ):
        problems.append(
            f"retry.call_timeout must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT:g}, got {retry.call_timeout!r}"
        )
    if (
        isinstance(upload_concurrency, bool)
        or not isinstance(upload_concurrency, int)
        or not 1 <= upload_concurrency <= 32
    ):
        problems.append(
            f"upload_concurrency must be a whole number from 1 to 32, got {upload_concurrency!r}"
        )
    for name, flag in (("upload_sha256", upload_sha256), ("verify_etag", verify_etag)):
        if not isinstance(flag, bool):
            problems.append(f"{name} must be True or False, got {flag!r}")
    if problems or base is None or secret is None:
        return Failure(InputError.of(problems))
    return Success(
        RunwayConfig(
            runway_base_url=_unsplit(base._replace(path=base.path.rstrip("/"))),
            token_url=resolved_token_url,
            audience=audience if audience is not None else _origin(base),
            client_id=client_id,
            client_secret=secret,
            partner_code=partner_code,
            connect_timeout=float(connect_timeout),
            read_timeout=float(read_timeout),
            verify=True if verify is True else str(verify),
            retry=retry,
            allow_http=allow_http is True,
            upload_sha256=upload_sha256,
            verify_etag=verify_etag,
            upload_concurrency=upload_concurrency,
        )
    )


def config_from_env(
    environ: Mapping[str, str] | None = None, **overrides: str | float | bool | None
) -> Result[RunwayConfig, RunwayError]:
    """``make_config`` from ``RUNWAY_*`` variables (see ``ENVIRONMENT_VARIABLES``).

    A keyword in ``overrides`` whose value is not ``None`` wins over the variable.
    A missing required setting is an ``InputError`` that names the variable.

    >>> env = {"RUNWAY_BASE_URL": "https://api.x-prod.runwayloader.org/api/v1", "RUNWAY_AUTH_BASE_URL": "https://x.prod.us.auth0.com",
    ...        "RUNWAY_CLIENT_ID": "id", "RUNWAY_CLIENT_SECRET": "s", "RUNWAY_PARTNER": "ea"}
    >>> config_from_env(env).unwrap().token_url
    'https://x.prod.us.auth0.com/oauth/token'
    >>> print(config_from_env({}).failure().message)  # doctest: +ELLIPSIS
    RUNWAY_BASE_URL is not set; RUNWAY_CLIENT_ID is not set; ...
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, variable in ENVIRONMENT_VARIABLES.items():
        given = overrides.pop(name, None)
        values[name] = given if given is not None else env.get(variable) or None
    values.update({k: v for k, v in overrides.items() if v is not None})
    missing = [
        f"{ENVIRONMENT_VARIABLES[name]} is not set"
        for name in ("runway_base_url", "client_id", "client_secret", "partner_code")
        if values.get(name) is None
    ]
    if values.get("auth_base_url") is None and values.get("token_url") is None:
        missing.append("RUNWAY_AUTH_BASE_URL or RUNWAY_TOKEN_URL is not set")
    if missing:
        return Failure(InputError.of(missing))
    return make_config(**values)  # type: ignore[arg-type]


def _verify_problems(verify: object) -> list[str]:
    if verify is True:
        return []
    if isinstance(verify, str) and verify.strip() and path_exists(verify):
        return []
    if verify is False:
        return [
            "verify=False would turn off TLS certificate checks; pass verify=<CA bundle path> "
            "for a private certificate authority"
        ]
    return [
        f"verify must be True or the path of a CA bundle file or folder that exists, got {verify!r}"
    ]


def _shown(value: str) -> str:
    """``value`` for an error message: no userinfo, no query (they may hold secrets)."""
    without_query = value.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = without_query.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        without_query = f"{scheme}://{host.rsplit('@', 1)[-1]}{slash}{path}"
    return without_query + ("?…" if "?" in value else "")


def _check_url(
    name: str, value: object, *, problems: list[str], allow_http: bool
) -> SplitResult | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{name} must be a non-empty URL string, got {value!r}")
        return None
    shown = _shown(value)
    if any(ch.isspace() or not ch.isprintable() for ch in value.strip()):
        problems.append(f"{name} {shown!r} must not contain spaces or control characters")
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        problems.append(f"{name} {shown!r} is not a valid URL ({exc})")
        return None
    if "@" in parts.netloc:
        problems.append(f"{name} {shown!r} must not carry credentials in the URL")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{name} {shown!r} must be an absolute http(s) URL, e.g. https://host/...")
        return None
    if parts.query or parts.fragment:
        problems.append(f"{name} {shown!r} must not have a query or fragment")
        return None
    if port == 0:
        problems.append(f"{name} {shown!r} has port 0")
        return None
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_http:
        problems.append(
            f"{name} {shown!r} must use https (plain http is allowed only for loopback "
            "hosts, or with allow_http=True)"
        )
        return None
    return parts


def transfer_url_problem(url: object, *, allow_http: bool) -> str | None:
    """What is wrong with a presigned upload or download URL Runway gave, or ``None``.

    It must be an absolute http(s) URL that parses (host, port), and use https
    unless its host is loopback or ``allow_http`` was given: the same rule as the
    API's own address, so student files never cross a network in clear text.

    >>> transfer_url_problem("http://s3.example.com/k?X-Amz-Signature=x", allow_http=False)
    'uses plain http to a host that is not loopback (s3.example.com); https is required'
    >>> transfer_url_problem("http://127.0.0.1:9000/k", allow_http=False) is None
    True
    """
    if not isinstance(url, str) or any(ch.isspace() or not ch.isprintable() for ch in url):
        return "is not a URL string without spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an absolute http(s) URL"
    if parts.scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        return (
            f"uses plain http to a host that is not loopback ({parts.hostname}); https is required"
        )
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(parts: SplitResult) -> str:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def _unsplit(parts: SplitResult) -> str:
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


TRANSPORT_SETTINGS: Final = ("connect_timeout", "read_timeout", "verify")
"""The settings a ``RequestsTransport`` is made with: a given ``transport`` has its own."""


def for_transport(config: RunwayConfig) -> Result[RunwayConfig, RunwayError]:
    """``config`` for a client given its own ``transport``, which brings its own
    timeouts and TLS settings: one that sets them (not the defaults) is refused,
    rather than silently ignored.

    >>> cfg = make_config(runway_base_url="https://api.x.org/api/v1", auth_base_url="https://a.auth0.com",
    ...                   client_id="id", client_secret="s", partner_code="ea", read_timeout=5).unwrap()
    >>> print(for_transport(cfg).failure().message)  # doctest: +ELLIPSIS
    transport= brings its own timeouts and TLS settings, so read_timeout would be ignored: ...
    """
    default_of = {
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "read_timeout": DEFAULT_READ_TIMEOUT,
        "verify": True,
    }
    clash = [name for name in TRANSPORT_SETTINGS if getattr(config, name) != default_of[name]]
    if not clash:
        return Success(config)
    return Failure(
        InputError.of(
            [
                f"transport= brings its own timeouts and TLS settings, so {', '.join(clash)} "
                "would be ignored: set them on the transport (RequestsTransport("
                "connect_timeout=..., read_timeout=..., verify=...)) or leave transport= out"
            ]
        )
    )


def changed(old: RunwayConfig, new: RunwayConfig, names: tuple[str, ...]) -> bool:
    """True if any of the settings ``names`` differs between ``old`` and ``new``."""
    return any(getattr(old, name) != getattr(new, name) for name in names)


def remake(config: RunwayConfig, **changes: object) -> Result[RunwayConfig, RunwayError]:
    """``make_config`` with ``config``'s settings and ``changes`` (checked again).

    A new ``runway_base_url`` gives a new default audience; a new ``auth_base_url``
    replaces the token URL.
    """
    options = config.options()
    if "runway_base_url" in changes and "audience" not in changes:
        options.pop("audience")
    if "auth_base_url" in changes:
        options.pop("token_url")
    return make_config(**{**options, **changes})  # type: ignore[arg-type]
