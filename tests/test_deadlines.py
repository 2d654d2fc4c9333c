"""Bounded waits: a silent token endpoint or API ends within the call's deadline.

A "silent" server is a loopback socket that accepts connections (the kernel
completes the handshake from the listen backlog) and never answers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from runway_client import RunwayClient
from runway_client._errors import DeadlineExceededError, OutcomeUnknownError, RequestTimeoutError
from runway_client._retry import DEFAULT_RETRY, RetryPolicy
from runway_client.sandbox import Sandbox


@pytest.fixture
def silent() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a socket that accepts and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_the_default_deadline_is_60_seconds() -> None:
    assert DEFAULT_RETRY.call_timeout == 60.0


def _client(sandbox: Sandbox, *, base: str, auth: str, call_timeout: float) -> RunwayClient:
    return RunwayClient(
        runway_base_url=base,
        auth_base_url=auth,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        audience=sandbox.audience,  # the sandbox's identity provider knows only its own API
        read_timeout=120,  # far longer than the deadline: the deadline must win
        retry=msgspec.structs.replace(RetryPolicy(), call_timeout=call_timeout),
    )


def test_a_silent_token_endpoint_ends_within_the_deadline(sandbox: Sandbox, silent: str) -> None:
    with _client(sandbox, base=sandbox.runway_base_url, auth=silent, call_timeout=2.0) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            client.verify_token()
        took = time.monotonic() - began
    assert took < 2.0 + 3.0  # generous: the machine is shared
    assert isinstance(caught.value, RequestTimeoutError)
    assert caught.value.step == "authorize"
    assert "call_timeout" in caught.value.message


def test_a_silent_api_ends_within_the_deadline(sandbox: Sandbox, silent: str) -> None:
    with _client(
        sandbox, base=f"{silent}/api/v1", auth=sandbox.auth_base_url, call_timeout=2.0
    ) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            client.verify_token()
        took = time.monotonic() - began
    assert took < 2.0 + 3.0
    assert caught.value.step == "verify_token"


def test_a_silent_post_jobs_is_an_unknown_outcome_within_the_deadline(
    sandbox: Sandbox, silent: str, sat_csv: Path
) -> None:
    """POST /jobs may have arrived: never sent again, said as such, and still bounded."""
    with _client(
        sandbox, base=f"{silent}/api/v1", auth=sandbox.auth_base_url, call_timeout=2.0
    ) as client:
        began = time.monotonic()
        with pytest.raises(OutcomeUnknownError):
            client.load_files(
                "ea",
                "assessments/PSAT_SAT",
                {"INPUT_FILE": sat_csv},
                {"TEST_TYPE": "SAT"},
                school_year="2526",
            )
        took = time.monotonic() - began
    assert took < 2.0 + 3.0


def test_retries_stop_at_the_deadline_not_after_all_attempts(
    sandbox: Sandbox,
) -> None:
    """503s with Retry-After 1: four attempts would take 3+ s; a 1.5 s deadline stops them."""
    sandbox.inject("verify", "status", status=503, retry_after=1, times=10)
    with _client(
        sandbox, base=sandbox.runway_base_url, auth=sandbox.auth_base_url, call_timeout=1.5
    ) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            client.verify_token()
        took = time.monotonic() - began
    assert took < 1.5 + 2.0
    assert caught.value.status == 503
    assert sandbox.received("verify") < 4
