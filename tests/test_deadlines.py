"""Bounded waits: a silent token endpoint or API ends within the call's deadline.

A "silent" server is a loopback socket that accepts connections (the kernel
completes the handshake from the listen backlog) and never answers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from runway_client import RunwayClient
from runway_client._errors import DeadlineExceededError, OutcomeUnknownError, RequestTimeoutError
from runway_client._files import check_input_file
from runway_client._models import Job, JobSpec, SchoolYear
from runway_client._retry import DEFAULT_RETRY, RetryPolicy
from runway_client._steps import upload_file
from runway_client._transport import RequestsTransport
from runway_client.sandbox import Sandbox
from tests.conftest import sha256_file, write_random


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


def _job_to(url: str, path: Path) -> Job:
    source = check_input_file("INPUT_FILE", str(path)).unwrap()
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/MAP_Growth",
        school_year=SchoolYear(end_year=2026),
        files=(source,),
    )
    return Job(
        uid="stalled", upload_urls={"INPUT_FILE": url}, spec=spec, created_at=datetime.now(UTC)
    )


def test_a_slow_but_moving_upload_goes_on_past_the_timeouts(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """32 MiB read at 4 MiB/s takes 8 s, twice the 4 s timeouts (and the call_timeout):
    bytes keep moving, so it is not a stall, and no total deadline cuts a transfer.
    (The timeouts stay above the seconds the loopback socket buffers, up to a few MiB,
    take to drain after the last byte is handed over.)"""
    data = tmp_path / "slow.csv"
    write_random(data, 32 * 1024 * 1024)
    sandbox.throttle_uploads(4 * 1024 * 1024)
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        connect_timeout=4,
        read_timeout=4,
        retry=RetryPolicy(attempts=1, call_timeout=4),  # no second chance
    ) as client:
        began = time.monotonic()
        receipt = client.load_files(
            "ea", "assessments/MAP_Growth", {"INPUT_FILE": data}, school_year="2526"
        )
        took = time.monotonic() - began
    assert took > 6.0
    assert sha256_file(sandbox.object_path(receipt.job_uid, "INPUT_FILE")) == sha256_file(data)


def test_a_stalled_upload_fails_after_the_read_timeout(silent: str, tmp_path: Path) -> None:
    """Storage that takes the connection and reads nothing: once the socket buffers are
    full no byte moves, and the upload ends after about the read timeout."""
    data = tmp_path / "stalled.csv"
    with open(data, "wb") as sparse:
        sparse.truncate(64 * 1024 * 1024)
    transport = RequestsTransport(connect_timeout=1.5, read_timeout=1.5)
    began = time.monotonic()
    outcome = upload_file(
        transport,
        _job_to(f"{silent}/bucket/stalled/INPUT_FILE", data),
        "INPUT_FILE",
        policy=RetryPolicy(attempts=1),
    )
    took = time.monotonic() - began
    transport.close()
    error = outcome.failure()
    assert isinstance(error, RequestTimeoutError), error
    assert error.job_uid == "stalled"
    assert took < 1.5 + 10  # the buffers fill in well under a second on loopback
