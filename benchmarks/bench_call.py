"""What the client subprocesses (``bench_client.py``, ``bench_download_client.py``) share.

- ``parse_call_args``: their options, always with ``--profile-out``.
- ``timed_call``: one library call over a fresh ``RequestsTransport``, timed,
  under cProfile when asked.
- ``report``: the outcome as one JSON line on stdout, or the error on stderr.

Kept apart from ``bench_common.py`` so a client subprocess imports only what it
needs (its start-up is part of the measured wall time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from returns.result import Failure, Result

from runway_client._errors import RunwayError
from runway_client._transport import RequestsTransport

T = TypeVar("T")


def parse_call_args(
    doc: str | None,
    argv: Sequence[str] | None,
    required: Sequence[str],
    defaults: Mapping[str, str] | None = None,
) -> argparse.Namespace:
    """``required`` options, then ``defaults``' options, then ``--profile-out``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    for flag in required:
        parser.add_argument(flag, required=True)
    for flag, default in (defaults or {}).items():
        parser.add_argument(flag, default=default)
    parser.add_argument("--profile-out", default=None)
    return parser.parse_args(argv)


def timed_call(
    call: Callable[[RequestsTransport], Result[T, RunwayError]], profile_out: str | None
) -> tuple[Result[T, RunwayError], float]:
    """``call(transport)`` and the seconds it took; its cProfile stats to ``profile_out``."""
    transport = RequestsTransport(connect_timeout=10.0, read_timeout=300.0)
    profiler = cProfile.Profile() if profile_out else None
    try:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        outcome = call(transport)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - began
    finally:
        transport.close()
    if profiler is not None and profile_out:
        profiler.dump_stats(profile_out)
    return outcome, seconds


def report(
    program: str,
    action: str,
    outcome: Result[T, RunwayError],
    seconds: float,
    fields: Callable[[T], dict[str, object]],
) -> int:
    """Print ``{"<action>_seconds": seconds, **fields(receipt)}`` as JSON (0), or the error (1)."""
    if isinstance(outcome, Failure):
        error = outcome.failure()
        print(
            f"{program}: {action} failed: {type(error).__name__}: {error.message}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps({f"{action}_seconds": seconds, **fields(outcome.unwrap())}))
    return 0
