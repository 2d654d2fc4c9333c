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
from typing import Final, Literal, NamedTuple, TypedDict
from urllib.parse import SplitResult, urlsplit, urlunsplit

import msgspec
from returns.result import Failure, Result, Success

from runway_client._defaults import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, MAX_TIMEOUT
from runway_client._errors import InputError, RunwayError
from runway_client._files import path_exists
from runway_client._models import name_problems
from runway_client._redaction import Secret
from runway_client._retry import DEFAULT_RETRY, RetryPolicy

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "SETTINGS",
    "Options",
    "RunwayConfig",
    "Setting",
    "config_from_env",
    "make_config",
]


class Setting(NamedTuple):
    """One connection setting: its argument name (``RunwayClient``, ``make_config``),
    environment variable, command-line flag (``None``: not a flag) and help."""

    name: str
    variable: str | None
    flag: str | None
    help: str


SETTINGS: Final = (
    Setting(
        "runway_base_url",
        "RUNWAY_BASE_URL",
        "--base-url",
        "e.g. https://api.x-prod.runwayloader.org/api/v1",
    ),
    Setting(
        "auth_base_url",
        "RUNWAY_AUTH_BASE_URL",
        "--auth-base-url",
        "Auth0 base URL (token at /oauth/token)",
    ),
    Setting(
        "token_url",
        "RUNWAY_TOKEN_URL",
        "--token-url",
        "an OIDC token endpoint, instead of --auth-base-url",
    ),
    Setting("client_id", "RUNWAY_CLIENT_ID", "--client-id", "OAuth2 client id"),
    Setting(
        "client_secret",
        "RUNWAY_CLIENT_SECRET",
        None,
        "read only from the environment, so it never shows in a process list",
    ),
    Setting("partner_code", "RUNWAY_PARTNER", "--partner", "partner code, e.g. ea"),
    Setting("audience", None, None, "the token audience (default: the instance origin)"),
    Setting(
        "connect_timeout",
        None,
        "--connect-timeout",
        f"seconds (default {DEFAULT_CONNECT_TIMEOUT:g})",
    ),
    Setting("read_timeout", None, "--read-timeout", f"seconds (default {DEFAULT_READ_TIMEOUT:g})"),
    Setting("verify", None, "--ca-bundle", "CA bundle path for TLS verification"),
    Setting("retry", None, None, "a RetryPolicy"),
    Setting("allow_http", None, None, "permit plain http to hosts other than loopback"),
)
"""Every connection setting, written once: ``Options`` and ``make_config`` take
these names, ``config_from_env`` reads the variables, the command line makes the flags."""

ENVIRONMENT_VARIABLES: Final = {s.name: s.variable for s in SETTINGS if s.variable is not None}
"""Settings read by ``config_from_env`` and the command line, by argument name."""


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
        retry: when and how patiently requests are tried again (``runway_client._retry``).
        allow_http: plain http was explicitly allowed for non-loopback hosts.
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
        )
    )


def config_from_env(
    environ: Mapping[str, str] | None = None, **overrides: str | float | bool | None
) -> Result[RunwayConfig, RunwayError]:
    """``make_config`` from ``RUNWAY_*`` variables (see ``ENVIRONMENT_VARIABLES``).

    A keyword in ``overrides`` whose value is not ``None`` wins over the variable.
    A missing required setting is an ``InputError`` that names the variable.
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
