"""RunwayClient: the original README example, validation before creation, the token cache."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from msgspec.structs import replace
from returns.result import Result

from runway_client import (
    AuthenticationError,
    InputError,
    LoadReceipt,
    RequestRejectedError,
    RetryPolicy,
    RunwayClient,
    RunwayError,
    TokenCache,
    make_config,
    prepare_job,
)
from runway_client._errors import Step
from runway_client._transport import Body, HttpRequest, HttpResponse, RequestsTransport, Sink
from runway_client.sandbox import Sandbox


def test_the_original_readme_example_runs_verbatim(sandbox: Sandbox, sat_csv: Path) -> None:
    # The original README, with the sandbox's URLs and credentials and a real path.
    client = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code="ea",
    )
    client.load_files(
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files={"INPUT_FILE": str(sat_csv)},
        bundle_params={"TEST_TYPE": "SAT"},
        school_year="2526",
    )
    (job,) = sandbox.jobs()
    assert job.school_year == "2026"
    assert job.files == {"INPUT_FILE": "sat.csv"}
    assert job.params == {"TEST_TYPE": "SAT"}
    assert job.started
    assert job.uploaded_sha256["INPUT_FILE"] == hashlib.sha256(sat_csv.read_bytes()).hexdigest()


def test_load_files_returns_the_receipt(
    client: RunwayClient, sandbox: Sandbox, sat_csv: Path
) -> None:
    receipt = client.load_files(
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files={"INPUT_FILE": sat_csv},  # a PathLike works too
        bundle_params={"TEST_TYPE": "PSAT 8/9"},
        school_year=2026,
    )
    assert isinstance(receipt, LoadReceipt)
    assert receipt.job_uid == sandbox.jobs()[0].uid
    assert receipt.files[0].path == str(sat_csv)
    assert receipt.files[0].file_name == "sat.csv"
    assert receipt.total_bytes == sat_csv.stat().st_size


def test_checksum_off_and_etag_check_on_through_the_client_settings(
    sandbox: Sandbox, sat_csv: Path
) -> None:
    """``upload_sha256=False``: no checksum in the receipt; ``verify_etag=True``: the
    sandbox's ETag (its own MD5 of what it stored) is compared and accepted."""
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        upload_sha256=False,
        verify_etag=True,
    ) as client:
        assert (client.config.upload_sha256, client.config.verify_etag) == (False, True)
        receipt = client.load_files(
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"TEST_TYPE": "PSAT 8/9"},
            school_year=2026,
        )
    (file,) = receipt.files
    assert file.sha256 is None
    data = sat_csv.read_bytes()
    assert file.etag == f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - S3's ETag is MD5
    assert sandbox.jobs()[0].started


def test_the_checksum_settings_must_be_booleans(sandbox: Sandbox) -> None:
    with pytest.raises(InputError) as caught:
        RunwayClient(
            runway_base_url=sandbox.runway_base_url,
            auth_base_url=sandbox.auth_base_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            partner_code=sandbox.partner_code,
            upload_sha256="no",  # type: ignore[arg-type]
            verify_etag=1,  # type: ignore[arg-type]
        )
    assert "upload_sha256 must be True or False, got 'no'" in caught.value.message
    assert "verify_etag must be True or False, got 1" in caught.value.message


def test_a_failed_local_check_leaves_zero_jobs_and_lists_every_problem(
    client: RunwayClient, sandbox: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as caught:
        client.load_files(
            tenant_code="ea",
            bundle_name="assessments/STAR",
            input_files={"INPUT_FILE": sat_csv, "INPUT_FILE_DS": tmp_path / "missing.csv"},
            bundle_params={},
            school_year="2527",
        )
    assert len(caught.value.problems) == 2
    assert "input_files['INPUT_FILE_DS']" in str(caught.value)
    assert "school_year '2527'" in str(caught.value)
    assert sandbox.jobs() == ()


def test_a_server_rejection_raises_the_error_from_the_result(
    client: RunwayClient, sandbox: Sandbox, sat_csv: Path
) -> None:
    with pytest.raises(RequestRejectedError) as caught:
        client.load_files(
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"TEST_TYPE": "GRE"},
            school_year="2025-26",
        )
    assert caught.value.server_message == "Invalid param values: TEST_TYPE"
    assert caught.value.__cause__ is None


def test_bad_settings_raise_input_error_at_construction() -> None:
    with pytest.raises(InputError) as caught:
        RunwayClient(
            runway_base_url="http://api.example.org/api/v1",
            auth_base_url="https://a.auth0.com",
            client_id="id",
            client_secret="hidden-secret-value",
            partner_code="",
        )
    assert "must use https" in str(caught.value)
    assert "partner_code" in str(caught.value)
    assert "hidden-secret-value" not in str(caught.value)


def test_wrong_credentials_raise_authentication_error_before_any_job(
    sandbox: Sandbox, sat_csv: Path
) -> None:
    client = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret="not-the-secret-9",
        partner_code="ea",
    )
    with pytest.raises(AuthenticationError):
        client.load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2026",
        )
    assert sandbox.jobs() == ()


def test_repr_hides_the_client_secret(client: RunwayClient, sandbox: Sandbox) -> None:
    assert sandbox.client_secret not in repr(client)
    assert "Secret('********')" in repr(client)


class CountingTransport:
    """A Transport that counts requests by URL path ending, then delegates."""

    def __init__(self, inner: RequestsTransport) -> None:
        self.inner = inner
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def send(
        self, request: HttpRequest, *, step: Step, deadline: float | None = None
    ) -> Result[HttpResponse, RunwayError]:
        with self.lock:
            self.sent.append(step)
        return self.inner.send(request, step=step, deadline=deadline)

    def put(
        self,
        url: str,
        body: Body,
        *,
        headers: Mapping[str, str],
        step: Step,
        on_sent: Callable[[int], None] | None = None,
    ) -> Result[HttpResponse, RunwayError]:
        with self.lock:
            self.sent.append(step)
        return self.inner.put(url, body, headers=headers, step=step, on_sent=on_sent)

    def get(self, url: str, sink: Sink, *, step: Step) -> Result[HttpResponse, RunwayError]:
        with self.lock:
            self.sent.append(step)
        return self.inner.get(url, sink, step=step)


def counting_client(sandbox: Sandbox) -> tuple[RunwayClient, CountingTransport]:
    counter = CountingTransport(RequestsTransport(connect_timeout=5, read_timeout=30))
    client = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code="ea",
        transport=counter,
    )
    return client, counter


def load(client: RunwayClient, path: Path) -> LoadReceipt:
    return client.load_files(
        tenant_code="ea",
        bundle_name="assessments/MAP_Growth",
        input_files={"INPUT_FILE": path},
        school_year="2026",
    )


def test_the_token_is_cached_across_loads(sandbox: Sandbox, sat_csv: Path) -> None:
    client, counter = counting_client(sandbox)
    load(client, sat_csv)
    load(client, sat_csv)
    assert counter.sent.count("authorize") == 1
    assert counter.sent.count("create_job") == 2
    assert len(sandbox.jobs()) == 2


def test_an_expiring_token_is_renewed(sat_csv: Path) -> None:
    with Sandbox(token_lifetime=2) as sb:  # renewed in its last quarter: after 1.5 s
        client, counter = counting_client(sb)
        load(client, sat_csv)
        assert counter.sent.count("authorize") == 1  # one token for the whole load
        time.sleep(1.6)
        load(client, sat_csv)
        assert counter.sent.count("authorize") == 2


def test_threads_sharing_a_client_fetch_one_token(sandbox: Sandbox, sat_csv: Path) -> None:
    client, counter = counting_client(sandbox)
    receipts: list[LoadReceipt] = []
    threads = [
        threading.Thread(target=lambda: receipts.append(load(client, sat_csv))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(receipts) == 6
    assert counter.sent.count("authorize") == 1
    assert {r.job_uid for r in receipts} == {j.uid for j in sandbox.jobs()}
    assert all(j.started for j in sandbox.jobs())


@pytest.mark.parametrize(
    ("wait", "poll_interval", "says"),
    [
        (5, -1, "poll_interval must be"),
        (5, 0, "poll_interval must be"),
        (float("nan"), 1, "wait must be"),
        ("5", 1, "wait must be"),
        (-3, 1, "wait must be"),
    ],
)
def test_bad_wait_settings_fail_before_any_job(
    client: RunwayClient,
    sandbox: Sandbox,
    sat_csv: Path,
    wait: object,
    poll_interval: object,
    says: str,
) -> None:
    with pytest.raises(InputError, match=says):
        client.load_files(
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"TEST_TYPE": "SAT"},
            school_year="2526",
            wait=wait,  # type: ignore[arg-type]
            poll_interval=poll_interval,  # type: ignore[arg-type]
        )
    assert sandbox.jobs() == ()


def test_a_401_mid_flow_fetches_a_fresh_token_once_and_repeats_that_request(
    sandbox: Sandbox, sat_csv: Path
) -> None:
    from runway_client._models import Token
    from runway_client._redaction import Secret
    from runway_client._tokens import TokenCache

    client, counter = counting_client(sandbox)
    revoked = Token(access_token=Secret("not.a.valid-token"), token_type="Bearer", expires_at=1e12)
    cache = client.token_cache
    assert isinstance(cache, TokenCache)
    cache._tokens[("create:jobs", "partner:ea")] = revoked  # as if revoked server-side
    receipt = load(client, sat_csv)
    assert counter.sent == ["create_job", "authorize", "create_job", "upload", "start"]
    assert [j.uid for j in sandbox.jobs()] == [receipt.job_uid]


def test_a_token_echoed_in_an_api_error_is_masked(sandbox: Sandbox, sat_csv: Path) -> None:
    from returns.result import Success

    from runway_client._models import Token
    from runway_client._redaction import Secret
    from runway_client._steps import create_job
    from runway_client._transport import HttpResponse

    raw = "eyJ.echoed-token.value"

    class Echo:
        def send(
            self, request: HttpRequest, *, step: Step, deadline: float | None = None
        ) -> Result[HttpResponse, RunwayError]:
            return Success(
                HttpResponse(status=401, body=f'{{"message": "jwt malformed {raw}"}}'.encode())
            )

        def put(
            self,
            url: str,
            body: Body,
            *,
            headers: Mapping[str, str],
            step: Step,
            on_sent: Callable[[int], None] | None = None,
        ) -> Result[HttpResponse, RunwayError]:
            raise AssertionError("not reached")

        def get(self, url: str, sink: object, *, step: Step) -> Result[HttpResponse, RunwayError]:
            raise AssertionError("not reached")

    client = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id="c",
        client_secret="s",
        partner_code="ea",
    )
    spec = prepare_job(
        partner_code="ea",
        tenant_code="ea",
        bundle_name="b",
        school_year="2026",
        input_files={"INPUT_FILE": sat_csv},
    ).unwrap()
    token = Token(access_token=Secret(raw), token_type="Bearer", expires_at=1e12)
    error = create_job(Echo(), client.config, token, spec).failure()
    assert isinstance(error, AuthenticationError)
    assert raw not in str(error)
    assert raw not in repr(error.server_message)
    assert "jwt malformed REDACTED" in str(error)


# ---------------------------------------------------------------- construction


def settings_of(sb: Sandbox) -> dict[str, str]:
    return {
        "RUNWAY_BASE_URL": sb.runway_base_url,
        "RUNWAY_AUTH_BASE_URL": sb.auth_base_url,
        "RUNWAY_CLIENT_ID": sb.client_id,
        "RUNWAY_CLIENT_SECRET": sb.client_secret,
        "RUNWAY_PARTNER": sb.partner_code,
    }


def test_from_env_reads_the_runway_variables(sandbox: Sandbox, sat_csv: Path) -> None:
    with RunwayClient.from_env(settings_of(sandbox)) as client:
        assert client.config.partner_code == "ea"
        assert load(client, sat_csv).job_uid == sandbox.jobs()[0].uid


def test_from_env_names_each_missing_variable() -> None:
    with pytest.raises(InputError) as caught:
        RunwayClient.from_env({"RUNWAY_BASE_URL": "https://api.x.org/api/v1"})
    assert "RUNWAY_CLIENT_ID is not set" in caught.value.problems
    assert "RUNWAY_AUTH_BASE_URL or RUNWAY_TOKEN_URL is not set" in caught.value.problems


def test_from_config_shares_a_given_token_cache(sandbox: Sandbox, sat_csv: Path) -> None:
    config = make_config(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code="ea",
    ).unwrap()
    first = RunwayClient.from_config(config)
    second = RunwayClient.from_config(config, token_cache=first.token_cache)
    third = RunwayClient(
        sandbox.runway_base_url,
        sandbox.auth_base_url,
        sandbox.client_id,
        sandbox.client_secret,
        "ea",
        token_cache=first.token_cache,
    )
    assert isinstance(first.token_cache, TokenCache)
    for client in (first, second, third):
        load(client, sat_csv)
    assert sandbox.received("token") == 1
    assert len(sandbox.jobs()) == 3


def test_with_options_gives_a_new_client_and_leaves_this_one(
    sandbox: Sandbox, sat_csv: Path
) -> None:
    with RunwayClient.from_env(settings_of(sandbox)) as client:
        slow = client.with_options(read_timeout=600, retry=RetryPolicy(attempts=2))
        assert slow is not client
        assert (slow.config.read_timeout, slow.config.retry.attempts) == (600.0, 2)
        assert (client.config.read_timeout, client.config.retry.attempts) == (120.0, 4)
        assert slow.transport is not client.transport  # a new session for the new timeout
        same = client.with_options(allow_http=False)
        assert same.transport is client.transport
        assert same.token_cache is client.token_cache
        load(client, sat_csv)
        load(same, sat_csv)
        load(slow, sat_csv)
        assert sandbox.received("token") == 2  # the retry policy changed: a new cache
        with pytest.raises(InputError, match="read_timeout must be a number"):
            client.with_options(read_timeout=-1)


def test_a_transport_with_timeouts_or_tls_settings_is_refused(sandbox: Sandbox) -> None:
    transport = RequestsTransport(connect_timeout=5, read_timeout=5)
    with pytest.raises(InputError, match="transport= brings its own timeouts") as caught:
        RunwayClient(
            sandbox.runway_base_url,
            sandbox.auth_base_url,
            sandbox.client_id,
            sandbox.client_secret,
            "ea",
            transport=transport,
            read_timeout=600,
        )
    assert "read_timeout" in caught.value.message
    client = RunwayClient(
        sandbox.runway_base_url,
        sandbox.auth_base_url,
        sandbox.client_id,
        sandbox.client_secret,
        "ea",
        transport=transport,
    )
    assert client.transport is transport
    with pytest.raises(InputError, match="connect_timeout"):
        client.with_options(connect_timeout=3)
    with pytest.raises(InputError, match="verify"):
        RunwayClient.from_config(
            replace(client.config, verify=str(Path(__file__))), transport=transport
        )


def test_every_input_problem_names_the_callers_parameter(
    client: RunwayClient, sat_csv: Path
) -> None:
    with pytest.raises(InputError) as caught:
        client.load_files(
            tenant_code="e\x07a",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"API_YEAR": "2026"},
            school_year="2026",
            wait="soon",  # type: ignore[arg-type]
        )
    problems = caught.value.problems
    assert "tenant_code 'e\\x07a' has control characters or is not valid Unicode text" in problems
    assert "bundle_params['API_YEAR'] is set by Runway from school_year; remove it" in problems
    assert any(p.startswith("wait must be a number of seconds") for p in problems)


def test_milestones_are_logged_at_info_with_the_job_and_no_secret(
    client: RunwayClient, sandbox: Sandbox, sat_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11 item 10: an orchestrator's task log shows the job even if the task dies."""
    import logging

    with caplog.at_level(logging.INFO, logger="runway_client"):
        receipt = client.load_files(
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2526",
            bundle_params={"TEST_TYPE": "SAT"},
        )
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    uid = receipt.job_uid
    assert any(m.startswith(f"created job {uid}") for m in infos), infos
    assert any(
        m.startswith(f"uploaded INPUT_FILE (sat.csv): {sat_csv.stat().st_size} bytes in ")
        and uid in m
        for m in infos
    ), infos
    assert f"started job {uid}" in infos
    assert sandbox.client_secret not in caplog.text
    assert "X-Amz-Signature=" not in caplog.text or "X-Amz-Signature=REDACTED" in caplog.text


@pytest.mark.parametrize(("level", "shown"), [("info", ["hello"]), ("debug", ["hello", "detail"])])
def test_runway_log_sends_the_library_log_to_stderr(level: str, shown: list[str]) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import logging, runway_client; log = logging.getLogger('runway_client'); "
        "log.info('hello'); log.debug('detail')"
    )
    env = {**os.environ, "RUNWAY_LOG": level}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert [w for w in ("hello", "detail") if w in done.stderr] == shown
    quiet = {k: v for k, v in os.environ.items() if k != "RUNWAY_LOG"}
    silent = subprocess.run(
        [sys.executable, "-c", code], env=quiet, capture_output=True, text=True, check=True
    )
    assert "hello" not in silent.stderr
