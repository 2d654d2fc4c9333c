"""Every default and limit of runway_client, and the list of settings, in one place
(seconds unless said).

The modules that apply a rule import its number from here; nothing else sets one.

>>> DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_WAIT_SECONDS, DEFAULT_POLL_SECONDS
(10.0, 120.0, 3600.0, 15.0)
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "ASSUMED_TOKEN_LIFETIME",
    "CLOCK_SKEW_SECONDS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_UPLOAD_CONCURRENCY",
    "DEFAULT_WAIT_SECONDS",
    "ENVIRONMENT_VARIABLES",
    "MAX_BATCH_CONCURRENCY",
    "MAX_END_YEAR",
    "MAX_POLL_SECONDS",
    "MAX_TIMEOUT",
    "MAX_TOKEN_LIFETIME",
    "MAX_WAIT_SECONDS",
    "MIN_END_YEAR",
    "MIN_POLL_SECONDS",
    "RETRY_AFTER_CAP",
    "RETRY_ATTEMPTS",
    "RETRY_BACKOFF_BASE",
    "RETRY_BACKOFF_CAP",
    "RETRY_CALL_TIMEOUT",
    "SETTINGS",
    "TOKEN_LEEWAY_SECONDS",
    "USER_AGENT",
    "VERSION",
    "Setting",
]

VERSION: Final = "0.1.0"
"""This package's version (``runway_client.__version__``; pyproject.toml says the same)."""
USER_AGENT: Final = f"runway-client/{VERSION}"
"""The ``User-Agent`` of every request to Runway and its identity provider."""

# ---------------------------------------------------------------- connections
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to wait for a TCP/TLS connection."""
DEFAULT_READ_TIMEOUT: Final = 120.0
"""Seconds to wait between bytes of an answer (and for S3 to answer an upload); an
upload or download that moves no byte for this long has stalled and fails."""
DEFAULT_UPLOAD_CONCURRENCY: Final = 4
"""Files of one job uploaded at once (each has its own presigned URL)."""
MAX_TIMEOUT: Final = 86400.0
"""The longest connect or read timeout accepted (seconds): one day."""

# ---------------------------------------------------------------- retries
RETRY_ATTEMPTS: Final = 4
"""Tries of a request that may be repeated (the first included)."""
RETRY_BACKOFF_BASE: Final = 0.5
"""Seconds: the bound of the first backoff (full jitter), doubled each try."""
RETRY_BACKOFF_CAP: Final = 20.0
"""Seconds: the largest backoff bound."""
RETRY_AFTER_CAP: Final = 60.0
"""Seconds: a longer ``Retry-After`` ends the tries (coming back sooner is useless)."""
RETRY_CALL_TIMEOUT: Final = 60.0
"""Seconds: one API call's total deadline, all attempts and waits included."""

# ---------------------------------------------------------------- tokens
TOKEN_LEEWAY_SECONDS: Final = 60.0
"""A cached token is renewed when it has less than this left (or a quarter of its
lifetime, if that is shorter)."""
ASSUMED_TOKEN_LIFETIME: Final = 300.0
"""Seconds a token without ``expires_in`` is taken to live (RFC 6749 section 5.1
makes the field optional); a shorter real life ends in a 401 and a fresh token."""
MAX_TOKEN_LIFETIME: Final = 86400.0
"""Seconds a token is taken to live at most, whatever ``expires_in`` says: an absurd
lifetime (years, ``1e300``) is capped, so the token is still used and renewed daily."""

# ---------------------------------------------------------------- waiting for outputs
DEFAULT_WAIT_SECONDS: Final = 3600.0
"""How long a wait for a run's output set lasts by default."""
DEFAULT_POLL_SECONDS: Final = 15.0
"""The longest pause between looks at the output sets, by default."""
MAX_WAIT_SECONDS: Final = 7 * 86400.0
"""The longest wait accepted: a week."""
MIN_POLL_SECONDS: Final = 0.01
MAX_POLL_SECONDS: Final = 86400.0
CLOCK_SKEW_SECONDS: Final = 120.0
"""Output sets created this long before the job's (client-clock) creation still count."""

# ---------------------------------------------------------------- school years
MIN_END_YEAR: Final = 2000
MAX_END_YEAR: Final = 2099

# ---------------------------------------------------------------- batches
MAX_BATCH_CONCURRENCY: Final = 64
"""The most loads ``load_many`` / ``runway-client batch`` runs at once."""

# ---------------------------------------------------------------- the settings, written once


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
    Setting(
        "audience",
        "RUNWAY_AUDIENCE",
        "--audience",
        "the token audience (default: the instance origin, e.g. https://api.x-prod.runwayloader.org)",
    ),
    Setting(
        "connect_timeout",
        None,
        "--connect-timeout",
        f"seconds (default {DEFAULT_CONNECT_TIMEOUT:g})",
    ),
    Setting(
        "read_timeout",
        None,
        "--read-timeout",
        "seconds without a byte moving before a request or transfer fails "
        f"(default {DEFAULT_READ_TIMEOUT:g})",
    ),
    Setting("verify", None, "--ca-bundle", "CA bundle path for TLS verification"),
    Setting("retry", None, None, "a RetryPolicy"),
    Setting("allow_http", None, None, "permit plain http to hosts other than loopback"),
    Setting("upload_sha256", None, None, "compute each uploaded file's SHA-256 (default on)"),
    Setting("verify_etag", None, None, "check each PUT's ETag against the file's MD5"),
    Setting(
        "upload_concurrency",
        None,
        None,
        f"files of one job uploaded at once (default {DEFAULT_UPLOAD_CONCURRENCY})",
    ),
)
"""Every connection setting, written once: ``Options`` and ``make_config`` take
these names, ``config_from_env`` reads the variables, the command line makes the flags."""

ENVIRONMENT_VARIABLES: Final = {s.name: s.variable for s in SETTINGS if s.variable is not None}
"""Settings read by ``config_from_env`` and the command line, by argument name."""
