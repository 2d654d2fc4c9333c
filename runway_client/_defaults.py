"""Every default and limit of runway_client, in one place (seconds unless said).

The modules that apply a rule import its number from here; nothing else sets one.

>>> DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_WAIT_SECONDS, DEFAULT_POLL_SECONDS
(10.0, 120.0, 3600.0, 15.0)
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ASSUMED_TOKEN_LIFETIME",
    "CLOCK_SKEW_SECONDS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_POLL_SECONDS",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_WAIT_SECONDS",
    "MAX_END_YEAR",
    "MAX_POLL_SECONDS",
    "MAX_TIMEOUT",
    "MAX_WAIT_SECONDS",
    "MIN_END_YEAR",
    "MIN_POLL_SECONDS",
    "RETRY_AFTER_CAP",
    "RETRY_ATTEMPTS",
    "RETRY_BACKOFF_BASE",
    "RETRY_BACKOFF_CAP",
    "TOKEN_LEEWAY_SECONDS",
]

# ---------------------------------------------------------------- connections
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to wait for a TCP/TLS connection."""
DEFAULT_READ_TIMEOUT: Final = 120.0
"""Seconds to wait between bytes of an answer (and for S3 to answer an upload)."""
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

# ---------------------------------------------------------------- tokens
TOKEN_LEEWAY_SECONDS: Final = 60.0
"""A cached token is renewed when it has less than this left (or a quarter of its
lifetime, if that is shorter)."""
ASSUMED_TOKEN_LIFETIME: Final = 300.0
"""Seconds a token without ``expires_in`` is taken to live (RFC 6749 section 5.1
makes the field optional); a shorter real life ends in a 401 and a fresh token."""

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
