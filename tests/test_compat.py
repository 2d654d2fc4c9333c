"""The original client's surface (``_compat``): both call patterns of Education
Analytics' ``edu_edfi_airflow`` against the sandbox, without Airflow, and each old
method's behaviour."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import runway_client
from runway_client import (
    InputError,
    RequestRejectedError,
    RunwayClient,
    RunwayError,
    RunwayResponseError,
    StorageError,
)
from runway_client._compat import RunwayJob
from runway_client.sandbox import Sandbox

BUNDLE = "assessments/PSAT_SAT"
SAT = {"TEST_TYPE": "SAT"}


@dataclass
class Connection:
    """The shape of an Airflow Connection, as edu_edfi_airflow's hook reads it."""

    host: str
    login: str
    password: str
    extra: str = "{}"
    extra_dejson: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.extra_dejson = json.loads(self.extra)


def connection_for(sandbox: Sandbox) -> Connection:
    return Connection(
        host=sandbox.runway_base_url,
        login=sandbox.client_id,
        password=sandbox.client_secret,
        extra=json.dumps(
            {
                "extra__runway__auth_base_url": sandbox.auth_base_url,
                "extra__runway__partner_code": sandbox.partner_code,
            }
        ),
    )


def client_as_edu_edfi_airflow_builds_it(conn: Connection) -> RunwayClient:
    """Keyword construction from the connection's fields, as its ``RunwayHook`` does."""
    extras = conn.extra_dejson
    return RunwayClient(
        runway_base_url=conn.host,
        auth_base_url=extras["extra__runway__auth_base_url"],
        client_id=conn.login,
        client_secret=conn.password,
        partner_code=extras["extra__runway__partner_code"],
    )


def test_edu_edfi_airflow_load_files_pattern(sandbox: Sandbox, sat_csv: Path) -> None:
    client = client_as_edu_edfi_airflow_builds_it(connection_for(sandbox))
    client.load_files(
        tenant_code="ea",
        bundle_name=BUNDLE,
        bundle_params={"TEST_TYPE": "SAT"},
        input_files={"INPUT_FILE": str(sat_csv)},
        school_year="2526",
    )
    (job,) = sandbox.jobs()
    assert job.started
    assert job.school_year == "2026"
    assert dict(job.files) == {"INPUT_FILE": "sat.csv"}


def test_edu_edfi_airflow_three_call_pattern(sandbox: Sandbox, sat_csv: Path) -> None:
    client = client_as_edu_edfi_airflow_builds_it(connection_for(sandbox))
    input_files = {"INPUT_FILE": str(sat_csv)}
    job = client.request_runway_job(
        tenant_code="ea",
        bundle_name=BUNDLE,
        input_files=input_files,
        bundle_params={"TEST_TYPE": "SAT"},
        school_year="2526",
    )
    assert isinstance(job["uid"], str)
    assert list(job["uploadUrls"]) == ["INPUT_FILE"]  # type: ignore[call-overload]
    (created,) = sandbox.jobs()
    assert created.uid == job["uid"]
    assert not created.started
    assert created.school_year == "2026"
    assert dict(created.files) == {"INPUT_FILE": "sat.csv"}  # base name only

    client.upload_to_s3(job, input_files)
    assert sandbox.job(created.uid).uploaded_bytes == {"INPUT_FILE": sat_csv.stat().st_size}
    receipt = client.start_job(job)

    assert sandbox.job(created.uid).started
    assert receipt.job_uid == created.uid
    assert [f.key for f in receipt.files] == ["INPUT_FILE"]
    assert len(sandbox.jobs()) == 1


def test_original_positional_order_still_works(sandbox: Sandbox, sat_csv: Path) -> None:
    client = client_as_edu_edfi_airflow_builds_it(connection_for(sandbox))
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    client.upload_to_s3(job, {"INPUT_FILE": str(sat_csv)})
    client.start_job(job)
    assert sandbox.job(str(job["uid"])).started


def test_request_runway_job_checks_everything_before_creating(
    sandbox: Sandbox, client: RunwayClient, tmp_path: Path
) -> None:
    with pytest.raises(RunwayResponseError) as caught:
        client.request_runway_job(
            tenant_code="ea",
            bundle_name=BUNDLE,
            input_files={"INPUT_FILE": str(tmp_path / "missing.csv")},
            bundle_params={},
            school_year="2527",
        )
    assert isinstance(caught.value, InputError)
    assert len(caught.value.problems) == 2  # the file and the year, together
    assert sandbox.jobs() == ()
    assert sandbox.received("create_job") == 0


def test_runway_response_error_is_every_runway_error() -> None:
    assert RunwayResponseError is RunwayError
    assert runway_client.RunwayResponseError is RunwayError
    for name in runway_client.__all__:
        obj = getattr(runway_client, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, RunwayResponseError), name


def test_a_server_refusal_is_caught_as_runway_response_error(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path
) -> None:
    with pytest.raises(RunwayResponseError) as caught:
        client.request_runway_job("nope", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    assert isinstance(caught.value, RequestRejectedError)
    assert sandbox.jobs() == ()


def test_upload_to_s3_checks_the_files_against_the_job(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path
) -> None:
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    renamed = sat_csv.with_name("other.csv")
    renamed.write_bytes(sat_csv.read_bytes())
    with pytest.raises(InputError) as caught:
        client.upload_to_s3(job, {"INPUT_FILE": str(renamed), "SECOND": str(sat_csv)})
    assert any("'other.csv'" in p for p in caught.value.problems)
    assert any("no file key 'SECOND'" in p for p in caught.value.problems)
    assert sandbox.received("upload") == 0


def test_upload_to_s3_uploads_the_paths_given(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path, tmp_path: Path
) -> None:
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    elsewhere = tmp_path / "copy" / "sat.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(sat_csv.read_bytes() + b"1,2,3\n")
    (sent,) = client.upload_to_s3(job, {"INPUT_FILE": str(elsewhere)})
    assert sent.path == str(elsewhere)
    assert sandbox.job(str(job["uid"])).uploaded_bytes["INPUT_FILE"] == elsewhere.stat().st_size
    assert client.start_job(job).files == (sent,)


def test_a_failed_upload_is_resumable(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path
) -> None:
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    sandbox.inject("upload", "status", status=500, times=20)  # more than the retries
    with pytest.raises(StorageError) as caught:
        client.upload_to_s3(job, {"INPUT_FILE": str(sat_csv)})
    pending = caught.value.pending
    assert pending is not None
    assert pending.job.uid == job["uid"]
    sandbox.clear_faults()
    receipt = client.resume(pending)
    assert receipt.job_uid == job["uid"]
    assert sandbox.job(receipt.job_uid).started
    assert len(sandbox.jobs()) == 1


def test_start_job_twice_is_refused_and_runs_the_job_once(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path
) -> None:
    """Issue 15 item 2: Runway runs a job again when it is started after its run ended."""
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    client.upload_to_s3(job, {"INPUT_FILE": str(sat_csv)})
    client.start_job(job)
    assert sandbox.wait_for_run(str(job["uid"])) == "succeeded"
    with pytest.raises(RequestRejectedError) as caught:
        client.start_job(job)
    assert caught.value.code == "job_already_started"
    assert caught.value.pending is None
    assert "not started again" in str(caught.value)
    assert sandbox.received("start") == 1
    assert sandbox.runs(str(job["uid"])) == ("succeeded",)


def test_start_job_before_upload_is_refused_and_resumable(
    sandbox: Sandbox, client: RunwayClient, sat_csv: Path
) -> None:
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    with pytest.raises(RequestRejectedError) as caught:
        client.start_job(job)
    assert caught.value.pending is not None
    client.resume(caught.value.pending)
    assert sandbox.job(str(job["uid"])).started


def test_upload_and_start_take_only_a_requested_job(client: RunwayClient, sat_csv: Path) -> None:
    with pytest.raises(InputError, match="RunwayJob"):
        client.start_job({"uid": "x", "uploadUrls": {}})  # type: ignore[arg-type]


def test_runway_job_reads_like_the_answer_and_hides_signatures(
    client: RunwayClient, sat_csv: Path
) -> None:
    job = client.request_runway_job("ea", BUNDLE, {"INPUT_FILE": str(sat_csv)}, SAT, "2526")
    assert isinstance(job, RunwayJob)
    url = job["uploadUrls"]["INPUT_FILE"]  # type: ignore[index]
    assert dict(job) == {"uid": job["uid"], "uploadUrls": {"INPUT_FILE": url}}
    signature = url.rpartition("=")[2]
    assert signature
    assert signature not in repr(job)
    assert signature not in str(job)


def test_set_token_and_the_token_attribute(sandbox: Sandbox, client: RunwayClient) -> None:
    assert client.token is None
    client.set_token()
    first = client.token
    assert first is not None
    assert first.token_type == "Bearer"
    assert set(first.scope.split()) >= {"create:jobs", "partner:ea"}
    assert not first.is_expired()
    secret = first.access_token.get_secret_value()
    assert first.to_header() == {"Authorization": f"Bearer {secret}"}
    assert secret not in repr(first)
    client.set_token()  # a second call fetches a new one, as the original did
    assert client.token is not None
    assert sandbox.received("token") == 2


def test_set_token_with_bad_credentials_raises(sandbox: Sandbox) -> None:
    bad = RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret="wrong",
        partner_code="ea",
    )
    with pytest.raises(RunwayResponseError):
        bad.set_token()
    assert bad.token is None


def test_verify_token_answers_the_partners(client: RunwayClient) -> None:
    assert client.verify_token() == ("ea",)
