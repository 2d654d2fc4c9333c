"""When to try a request again, and how long to wait: ``RetryPolicy``, ``backoff``.

Which failures are retried depends on the endpoint (CONTRACT.md has no
idempotency key for ``POST /jobs``), so each step passes its own test to
``retrying``; the policy holds the numbers, all in one place:

===============  =======  ====================================================
setting          default  meaning
===============  =======  ====================================================
attempts         4        tries in all, the first included
backoff_base     0.5 s    the first wait's upper bound; it doubles each time
backoff_cap      20 s     no wait longer than this (before Retry-After)
retry_after_cap  60 s     a server's ``Retry-After`` is honoured up to this; a
                          longer one ends the retries (coming back early would
                          only spend them)
===============  =======  ====================================================

Waits use "full jitter" (a uniform draw below the exponential bound), in
``backoff``, a function of its own so tests can pin it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
from returns.result import Failure, Result, Success

from runway_client._defaults import (
    RETRY_AFTER_CAP,
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_BASE,
    RETRY_BACKOFF_CAP,
)
from runway_client._errors import RunwayError

__all__ = [
    "DEFAULT_RETRY",
    "RetryPolicy",
    "asked_wait",
    "backoff",
    "retrying",
    "wait_before",
]

logger = logging.getLogger("runway_client")

_T = TypeVar("_T")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how patiently to try again (seconds); see the module table."""

    attempts: int = RETRY_ATTEMPTS
    backoff_base: float = RETRY_BACKOFF_BASE
    backoff_cap: float = RETRY_BACKOFF_CAP
    retry_after_cap: float = RETRY_AFTER_CAP


DEFAULT_RETRY: Final = RetryPolicy()
"""The policy ``RunwayClient`` uses unless given another."""


def backoff(attempt: int, policy: RetryPolicy, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed try number ``attempt`` (1-based): full jitter.

    ``draw`` returns a float in [0, 1); pass ``lambda: 1.0`` to get the bound.

    >>> [backoff(n, RetryPolicy(), draw=lambda: 1.0) for n in (1, 2, 3, 7)]
    [0.5, 1.0, 2.0, 20.0]
    """
    bound = min(policy.backoff_cap, policy.backoff_base * 2.0 ** (attempt - 1))
    return bound * draw()


def asked_wait(error: RunwayError, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked to wait (``Retry-After``, either form), else ``None``."""
    if error.retry_after is not None:
        return max(0.0, float(error.retry_after))
    if error.retry_at is not None:
        return max(0.0, error.retry_at - now())
    return None


def wait_before(
    attempt: int,
    error: RunwayError,
    policy: RetryPolicy,
    draw: Callable[[], float] = random.random,
) -> float:
    """The wait before the next try: the server's ``Retry-After`` if it gave one (but
    never less than ``backoff``, so ``Retry-After: 0`` does not hammer), else ``backoff``.

    >>> from runway_client._errors import ServiceUnavailableError
    >>> e = ServiceUnavailableError("busy", step="create_job", status=429, retry_after=30)
    >>> wait_before(1, e, RetryPolicy())
    30.0
    """
    pause = backoff(attempt, policy, draw)
    asked = asked_wait(error)
    return pause if asked is None else max(asked, pause)


def retrying(
    attempt: Callable[[int], Result[_T, RunwayError]],
    should_retry: Callable[[RunwayError], bool],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Result[_T, RunwayError]:
    """Call ``attempt(n)`` for n = 1, 2, ... until it succeeds, ``should_retry`` says
    no, or ``policy.attempts`` are spent; return the last outcome."""
    outcome = attempt(1)
    for number in range(1, max(1, policy.attempts)):
        if isinstance(outcome, Success):
            return outcome
        error = outcome.failure()
        if not should_retry(error):
            return outcome
        asked = asked_wait(error)
        if asked is not None and asked > policy.retry_after_cap:
            # coming back sooner than asked only spends attempts: say so and stop
            return Failure(
                error.replace(
                    message=f"{error.message.rstrip('.')}. The server asked to wait {asked:.0f} s "
                    f"before trying again, more than retry_after_cap ({policy.retry_after_cap:g} s)"
                )
            )
        pause = wait_before(number, error, policy)
        logger.info(
            "%s failed (%s); trying again in %.2f s (attempt %d of %d)",
            error.step,
            type(error).__name__,
            pause,
            number + 1,
            policy.attempts,
        )
        sleep(pause)
        outcome = attempt(number + 1)
    return outcome
