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
call_timeout     60 s     the total deadline of one API call (token, create,
                          start, the read side): every attempt and every wait
                          between them; each attempt's read timeout is cut to
                          what is left, so a silent server ends in
                          ``DeadlineExceededError`` within this
===============  =======  ====================================================

A call's deadline is a value, ``deadline_for(policy)`` (a ``time.monotonic()``
instant), passed down to ``retrying`` and to ``Transport.send``: the AWS SDKs'
"API call timeout" over their "attempt timeout". Transfers (upload and download
bodies) have no total deadline: they fail when they stall (no byte moving for
the read timeout), so a slow but moving 5 GiB upload goes on.

Waits use "full jitter" (a uniform draw below the exponential bound), in
``backoff``, a function of its own so tests can pin it.
"""

from __future__ import annotations

import logging
import random
import threading
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
    RETRY_CALL_TIMEOUT,
)
from runway_client._errors import CancelledError, DeadlineExceededError, RunwayError, Step

__all__ = [
    "DEFAULT_RETRY",
    "RetryPolicy",
    "asked_wait",
    "backoff",
    "cancelled",
    "deadline_for",
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
    call_timeout: float = RETRY_CALL_TIMEOUT


def deadline_for(policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> float:
    """The ``time.monotonic()`` instant by which one API call must be over.

    >>> deadline_for(RetryPolicy(call_timeout=5), clock=lambda: 100.0)
    105.0
    """
    return clock() + policy.call_timeout


def cancelled(error: RunwayError | None, *, step: Step, what: str) -> RunwayError:
    """The ``CancelledError`` for a stop at ``step``: ``what`` says what was not done;
    it names the job of ``error`` (and carries its ``pending``) when there is one."""
    return CancelledError(
        f"interrupted: {what}",
        step=step,
        job_uid=error.job_uid if error is not None else None,
        pending=error.pending if error is not None else None,
    )


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
    deadline: float | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Result[_T, RunwayError]:
    """Call ``attempt(n)`` for n = 1, 2, ... until it succeeds, ``should_retry`` says
    no, or ``policy.attempts`` are spent; return the last outcome.

    ``deadline`` (a ``clock()`` instant, see ``deadline_for``) bounds the whole call:
    when the next wait would end past it, the retries stop with
    ``DeadlineExceededError`` (naming the last failure). ``cancel``: when set during
    a wait, the retries stop with ``CancelledError``.
    """
    started = clock()
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
        if deadline is not None and clock() + pause >= deadline:
            return Failure(_out_of_time(error, policy, clock() - started, number))
        logger.info(
            "%s failed (%s); trying again in %.2f s (attempt %d of %d)",
            error.step,
            type(error).__name__,
            pause,
            number + 1,
            policy.attempts,
        )
        if cancel is not None:
            if cancel.wait(pause):
                return Failure(cancelled(error, step=error.step, what=f"{error.step} not retried"))
        else:
            sleep(pause)
        outcome = attempt(number + 1)
    return outcome


def _out_of_time(
    error: RunwayError, policy: RetryPolicy, elapsed: float, attempts: int
) -> RunwayError:
    """The last ``error`` retold as a ``DeadlineExceededError`` (same step and job)."""
    if isinstance(error, DeadlineExceededError):
        return error
    return DeadlineExceededError(
        f"no success within call_timeout ({policy.call_timeout:g} s; {attempts} "
        f"attempt{'s' if attempts != 1 else ''} in {elapsed:.1f} s); the last one: "
        f"{error.message}",
        step=error.step,
        job_uid=error.job_uid,
        status=error.status,
        server_message=error.server_message,
        code=error.code,
        request_sent=error.request_sent,
        request_id=error.request_id,
        extended_request_id=error.extended_request_id,
        pending=error.pending,
    )
