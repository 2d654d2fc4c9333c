"""``TokenCache``: the default token source of every flow, counted on the sandbox.

The measurements of issue 7: one token request per functional load, and one per
wait of any length while the token lives.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client import (
    OutputsNotReadyError,
    TokenCache,
    fetch_outputs,
    load_files,
    make_config,
    prepare_job,
    resume,
    wait_for_outputs,
)
from runway_client._config import RunwayConfig
from runway_client._models import JobSpec, Token
from runway_client._redaction import Secret
from runway_client._transport import RequestsTransport
from runway_client.sandbox import Sandbox
from runway_client.wire import load_scopes, read_scopes


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def net() -> Iterator[RequestsTransport]:
    transport = RequestsTransport(connect_timeout=5, read_timeout=30)
    yield transport
    transport.close()


def config_of(sb: Sandbox) -> RunwayConfig:
    return make_config(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        partner_code=sb.partner_code,
    ).unwrap()


def spec_of(path: Path) -> JobSpec:
    return prepare_job(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        school_year="2526",
        input_files={"INPUT_FILE": path},
        bundle_params={"TEST_TYPE": "SAT"},
    ).unwrap()


def test_a_functional_load_asks_for_one_token(
    sb: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    receipt = load_files(net, config_of(sb), spec_of(sat_csv)).unwrap()
    assert sb.received("token") == 1  # create and start share it (it was 2 before)
    assert sb.received("start") == 1
    assert sb.job(receipt.job_uid).uid == receipt.job_uid


def test_a_wait_of_many_looks_asks_for_one_token(sb: Sandbox, net: RequestsTransport) -> None:
    outcome = wait_for_outputs(
        net, config_of(sb), str(uuid.uuid4()), timeout=1.5, poll_interval=0.05
    )
    assert isinstance(outcome.failure(), OutputsNotReadyError)
    looks = sb.received("output_sets")
    assert looks >= 5
    assert sb.received("token") == 1  # one per wait, not one per look (it was `looks`)


def test_flows_given_one_cache_share_its_tokens(
    sb: Sandbox, net: RequestsTransport, sat_csv: Path, tmp_path: Path
) -> None:
    config = config_of(sb)
    cache = TokenCache(net, config)
    receipt = load_files(net, config, spec_of(sat_csv), token_source=cache).unwrap()
    load_files(net, config, spec_of(sat_csv), token_source=cache).unwrap()
    found = wait_for_outputs(
        net, config, receipt.job_uid, timeout=20, poll_interval=0.1, token_source=cache
    ).unwrap()
    fetch_outputs(net, config, found, tmp_path / "out", token_source=cache).unwrap()
    fetch_outputs(net, config, found.uid, tmp_path / "out", token_source=cache).unwrap()
    assert sb.received("token") == 3  # one per scope set: load, read, download


def test_resume_asks_for_one_token(sb: Sandbox, net: RequestsTransport, sat_csv: Path) -> None:
    sb.inject("start", "status", status=500, times=10)
    config = config_of(sb)
    error = load_files(net, config, spec_of(sat_csv)).failure()
    assert error.pending is not None
    sb.clear_faults()
    before = sb.received("token")
    resume(net, config, error.pending).unwrap()
    # one per scope set: the look for an earlier run's output set, and the start
    assert sb.received("token") - before == 2


def test_a_cached_token_is_reused_until_its_leeway(sb: Sandbox, net: RequestsTransport) -> None:
    cache = TokenCache(net, config_of(sb))
    scopes = load_scopes("ea")
    first = cache(scopes).unwrap()
    assert cache(tuple(reversed(scopes))).unwrap() is first  # one token per scope *set*
    assert cache.cached(scopes) is first
    assert cache(read_scopes("ea")).unwrap() is not first
    assert sb.received("token") == 2


def test_a_token_in_its_last_quarter_is_renewed() -> None:
    net = RequestsTransport(connect_timeout=5, read_timeout=30)
    with Sandbox(token_lifetime=2) as sb:
        cache = TokenCache(net, config_of(sb))
        first = cache(load_scopes("ea")).unwrap()
        time.sleep(1.6)  # less than a quarter of 2 s left
        assert cache(load_scopes("ea")).unwrap() is not first
        assert sb.received("token") == 2


def test_threads_share_one_refresh_after_a_401(sb: Sandbox, net: RequestsTransport) -> None:
    cache = TokenCache(net, config_of(sb))
    scopes = load_scopes("ea")
    refused = cache(scopes).unwrap()  # as if the API had just said 401 to it
    got: list[Token] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache(scopes, rejected=refused).unwrap()))
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(got) == 12
    assert len({id(token) for token in got}) == 1
    assert got[0] is not refused
    assert sb.received("token") == 2


def test_a_refused_credential_is_returned_and_not_cached(
    sb: Sandbox, net: RequestsTransport
) -> None:
    config = make_config(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret="wrong-secret",
        partner_code="ea",
    ).unwrap()
    cache = TokenCache(net, config)
    assert cache(load_scopes("ea")).failure().status == 401
    assert cache.cached(load_scopes("ea")) is None
    assert "wrong-secret" not in repr(cache)


def test_a_revoked_cached_token_is_replaced_once_mid_flow(
    sb: Sandbox, net: RequestsTransport, sat_csv: Path
) -> None:
    config = config_of(sb)
    cache = TokenCache(net, config)
    cache(load_scopes("ea")).unwrap()
    revoked = Token(access_token=Secret("not.a.valid-token"), token_type="Bearer", expires_at=1e12)
    cache._tokens[load_scopes("ea")] = revoked  # as if revoked server-side
    receipt = load_files(net, config, spec_of(sat_csv), token_source=cache).unwrap()
    assert sb.received("token") == 2  # the first, and one after the 401
    assert sb.received("create_job") == 2
    assert [j.uid for j in sb.jobs()] == [receipt.job_uid]
