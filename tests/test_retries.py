"""Faults: what is retried, what never is, token refresh, and resuming a job."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from runway_client import (
    InputChangedError,
    InputError,
    LoadReceipt,
    OutcomeUnknownError,
    RunwayClient,
    RunwayError,
    ServiceUnavailableError,
    StorageError,
)
from runway_client._errors import NetworkError, Step
from runway_client._models import PendingJob
from runway_client._retry import RetryPolicy, backoff, wait_before
from runway_client._transport import HttpResponse
from runway_client.cli import main
from runway_client.sandbox import Sandbox
from runway_client.testing.transports import ScriptedTransport
from tests.conftest import use_sandbox_env

FAST = RetryPolicy(attempts=4, backoff_base=0.001, backoff_cap=0.01, retry_after_cap=1.0)


def connect(
    sb: Sandbox, *, transport: object = None, read_timeout: float = 5.0, upload_concurrency: int = 4
) -> RunwayClient:
    """A client of ``sb``; a given ``transport`` brings its own timeouts."""
    client = RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        partner_code=sb.partner_code,
        retry=FAST,
        upload_concurrency=upload_concurrency,
    )
    if transport is None:
        return client.with_options(read_timeout=read_timeout)
    return RunwayClient.from_config(client.config, transport=transport)  # type: ignore[arg-type]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def load(client: RunwayClient, path: Path) -> LoadReceipt:
    return client.load_files(
        tenant_code="ea",
        bundle_name="assessments/MAP_Growth",
        input_files={"INPUT_FILE": path},
        school_year="2026",
    )


def assert_stored(sb: Sandbox, receipt: LoadReceipt, path: Path) -> None:
    job = sb.job(receipt.job_uid)
    assert job.started
    assert job.uploaded_sha256["INPUT_FILE"] == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the policy


def test_backoff_is_full_jitter_below_a_doubling_capped_bound() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    assert [backoff(n, policy, draw=lambda: 0.999999) for n in range(1, 6)] == pytest.approx(
        [0.5, 1, 2, 4, 4], rel=1e-5
    )
    assert backoff(3, policy, draw=lambda: 0.0) == 0.0


def test_retry_after_wins_over_backoff_but_never_means_no_pause() -> None:
    busy = ServiceUnavailableError("busy", step="upload", status=503, retry_after=2.5)
    assert wait_before(1, busy, RetryPolicy(), draw=lambda: 1.0) == 2.5
    now_again = ServiceUnavailableError("busy", step="upload", status=503, retry_after=0)
    assert wait_before(3, now_again, RetryPolicy(backoff_base=0.5), draw=lambda: 1.0) == 2.0


def test_a_retry_after_date_is_honoured() -> None:
    later = time.time() + 3
    busy = ServiceUnavailableError("busy", step="upload", status=503, retry_at=later)
    assert 2 < wait_before(1, busy, RetryPolicy(), draw=lambda: 0.0) <= 3


def test_a_retry_after_beyond_the_cap_ends_the_retries_at_once(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("token", "status", status=503, retry_after=99999, times=5)
    began = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        load(connect(sb), sat_csv)
    assert time.monotonic() - began < 2
    assert sb.received("token") == 1
    assert "asked to wait 99999 s before trying again, more than retry_after_cap" in str(
        caught.value
    )


# ---------------------------------------------------------------- token endpoint


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_the_token_request_is_retried_on_busy_answers(
    sb: Sandbox, sat_csv: Path, status: int
) -> None:
    sb.inject("token", "status", status=status, times=2)
    assert_stored(sb, load(connect(sb), sat_csv), sat_csv)
    assert sb.received("token") == 3


def test_retry_after_is_honoured(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("token", "status", status=429, retry_after=0.4)
    began = time.monotonic()
    load(connect(sb), sat_csv)
    assert time.monotonic() - began >= 0.4


def test_a_token_endpoint_that_stays_down_is_reported(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("token", "status", status=503, times=10)
    with pytest.raises(ServiceUnavailableError):
        load(connect(sb), sat_csv)
    assert sb.received("token") == FAST.attempts
    assert sb.jobs() == ()


# ---------------------------------------------------------------- POST /jobs: never twice


@pytest.mark.parametrize("status", [500, 502, 503])
def test_create_job_is_not_retried_after_the_server_answered_an_error(
    sb: Sandbox, sat_csv: Path, status: int
) -> None:
    sb.inject("create_job", "status", status=status)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), sat_csv)
    assert caught.value.status == status
    assert sb.received("create_job") == 1


def test_a_5xx_from_create_job_warns_that_the_job_may_exist(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("create_job", "status", status=500)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), sat_csv)
    assert "Runway may have created the job before failing: check the Runway UI" in str(
        caught.value
    )


def test_create_job_is_retried_after_429(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("create_job", "status", status=429, times=2)
    assert_stored(sb, load(connect(sb), sat_csv), sat_csv)
    assert sb.received("create_job") == 3
    assert len(sb.jobs()) == 1


@pytest.mark.parametrize(("fault", "seconds"), [("reset_before_answer", None), ("stall", 1.0)])
def test_create_job_that_may_have_arrived_is_never_sent_again(
    sb: Sandbox, sat_csv: Path, fault: str, seconds: float | None
) -> None:
    sb.inject("create_job", fault, seconds=seconds)
    with pytest.raises(OutcomeUnknownError) as caught:
        load(connect(sb, read_timeout=0.3), sat_csv)
    assert sb.received("create_job") == 1
    assert len(sb.jobs()) == 1  # the server did create it: the user is told to check
    assert "check the Runway UI before loading again" in str(caught.value)
    assert caught.value.exit_code == 14


def test_create_job_is_retried_when_it_certainly_never_left(sb: Sandbox, sat_csv: Path) -> None:
    def refuse_twice(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "create_job" and n <= 2:
            return Failure(NetworkError("could not connect", step=step, request_sent=False))
        return None

    flaky = ScriptedTransport(refuse_twice)
    assert_stored(sb, load(connect(sb, transport=flaky), sat_csv), sat_csv)
    assert flaky.calls["create_job"] == 3
    assert len(sb.jobs()) == 1


# ---------------------------------------------------------------- uploads


@pytest.mark.parametrize(
    ("fault", "status"),
    [("slow_down", None), ("status", 500), ("reset_mid_body", None), ("reset_before_answer", None)],
)
def test_uploads_are_retried_from_byte_zero(
    sb: Sandbox, sat_csv: Path, fault: str, status: int | None
) -> None:
    sb.inject("upload", fault, status=status, times=2)
    receipt = load(connect(sb), sat_csv)
    assert_stored(sb, receipt, sat_csv)
    assert sb.received("upload") == 3
    assert receipt.files[0].sha256 == hashlib.sha256(sat_csv.read_bytes()).hexdigest()


def test_an_upload_stalled_past_the_read_timeout_is_retried(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("upload", "stall", seconds=1.0)
    assert_stored(sb, load(connect(sb, read_timeout=0.3), sat_csv), sat_csv)


def test_an_expired_upload_url_is_not_retried_and_never_makes_a_second_job(
    sb: Sandbox, sat_csv: Path
) -> None:
    sb.inject("upload", "expire")
    with pytest.raises(StorageError) as caught:
        load(connect(sb), sat_csv)
    error = caught.value
    assert error.code == "AccessDenied"
    assert "load again to create a new job" in error.message
    assert sb.received("upload") == 1
    assert len(sb.jobs()) == 1
    assert error.job_uid == sb.jobs()[0].uid
    assert error.pending is None  # nothing to resume: the job can never be finished


def test_a_file_that_changes_between_tries_is_an_error_not_a_retry(
    sb: Sandbox, sat_csv: Path
) -> None:
    def change_then_fail(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "upload" and n == 1:
            sat_csv.write_bytes(sat_csv.read_bytes() + b"more,rows\n")
            return Failure(NetworkError("connection reset", step=step))
        return None

    with pytest.raises(InputChangedError) as caught:
        load(connect(sb, transport=ScriptedTransport(change_then_fail)), sat_csv)
    assert "changed size since it was checked" in str(caught.value)
    assert not sb.jobs()[0].started


# ---------------------------------------------------------------- start


def test_start_is_retried_on_5xx(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("start", "status", status=500)
    assert_stored(sb, load(connect(sb), sat_csv), sat_csv)
    assert sb.received("start") == 2


def test_a_start_that_worked_but_lost_its_answer_is_a_success(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("start", "reset_before_answer")  # the job is started, the answer lost
    receipt = load(connect(sb), sat_csv)
    assert sb.received("start") == 2  # the repeat heard "Job already in progress"
    assert_stored(sb, receipt, sat_csv)


# ---------------------------------------------------------------- resume


def test_a_job_left_unstarted_is_resumed_without_a_second_job(sb: Sandbox, tmp_path: Path) -> None:
    paths = {}
    for key in ("INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA"):
        paths[key] = tmp_path / f"{key.lower()}.csv"
        paths[key].write_bytes(key.encode() * 500)

    def storage_down_after_the_first_file(
        step: Step, n: int
    ) -> Result[HttpResponse, RunwayError] | None:
        if step == "upload" and n >= 2:
            return Failure(StorageError("storage refused: InternalError", step=step, status=500))
        return None

    scripted = ScriptedTransport(storage_down_after_the_first_file)
    # one file at a time: "the first upload" must be INPUT_FILE's, not whichever thread wins
    with pytest.raises(StorageError) as caught:
        connect(sb, transport=scripted, upload_concurrency=1).load_files(
            tenant_code="ea", bundle_name="assessments/STAR", input_files=paths, school_year="2026"
        )
    client = connect(sb)
    pending = caught.value.pending
    assert pending is not None
    assert len(pending.receipts) == 1  # files go up in parallel: whichever came first
    uploads_before = sb.received("upload")
    restored = PendingJob.from_json(pending.to_json()).unwrap()
    assert restored == pending
    receipt = client.resume(restored)
    assert sb.received("upload") == uploads_before + 2  # only the two missing files
    (job,) = sb.jobs()
    assert job.uid == receipt.job_uid
    assert job.started
    assert job.uploaded_bytes == {key: path.stat().st_size for key, path in paths.items()}


def test_resume_after_the_urls_expired_says_a_new_load_is_needed(sat_csv: Path) -> None:
    with Sandbox(upload_url_lifetime=0.5) as sb:
        sb.inject("upload", "status", status=500, times=10)
        client = connect(sb)
        with pytest.raises(StorageError) as caught:
            load(client, sat_csv)
        assert caught.value.pending is not None
        sb.clear_faults()
        time.sleep(0.7)
        with pytest.raises(StorageError) as again:
            client.resume(caught.value.pending)
        assert again.value.code == "AccessDenied"
        assert "new job" in again.value.message
        assert len(sb.jobs()) == 1


def test_the_cli_saves_a_private_resume_file_and_resume_finishes_the_job(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    monkeypatch.chdir(tmp_path)
    sb.inject("start", "status", status=500, times=10)
    load_args = [
        "load",
        "--tenant",
        "ea",
        "--bundle",
        "assessments/MAP_Growth",
        "--school-year",
        "2026",
    ]
    assert main([*load_args, "--file", f"INPUT_FILE={sat_csv}"]) == 8
    err = capsys.readouterr().err
    (job,) = sb.jobs()
    saved = tmp_path / f"runway-job-{job.uid}.json"
    assert f"runway-client resume {saved.name}" in err
    assert saved.stat().st_mode & 0o777 == 0o600
    assert "X-Amz-Signature=" not in err
    sb.clear_faults()
    assert main(["resume", saved.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["jobUid"] == job.uid
    assert sb.job(job.uid).started
    assert not saved.exists()  # its URLs were secrets; the job is done


LOAD_MAP = ["load", "--tenant", "ea", "--bundle", "assessments/MAP_Growth", "--school-year", "2026"]


def test_an_unfinishable_job_gets_no_resume_file(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    monkeypatch.chdir(tmp_path)
    sb.inject("upload", "expire")
    assert main([*LOAD_MAP, "--file", f"INPUT_FILE={sat_csv}"]) == 15
    err = capsys.readouterr().err
    assert "load again to create a new job" in err
    assert "resume" not in err
    assert list(tmp_path.glob("runway-job-*.json")) == []


def test_resume_can_wait_and_download(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    saved = tmp_path / "job.json"
    sb.inject("start", "status", status=500, times=10)
    assert main([*LOAD_MAP, "--file", f"INPUT_FILE={sat_csv}", "--resume-file", str(saved)]) == 8
    assert f"runway-client resume {saved}" in capsys.readouterr().err
    sb.clear_faults()
    out_dir = tmp_path / "out"
    assert (
        main(
            ["resume", str(saved), "--download", str(out_dir), "--poll-interval", "0.05", "--json"]
        )
        == 0
    )
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["outputSet"]["jobUid"] == receipt["jobUid"]
    assert (out_dir / "studentAssessments.jsonl").exists()


def test_a_failed_resume_says_how_to_go_on(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    saved = tmp_path / "job.json"
    sb.inject("start", "status", status=500, times=20)
    main([*LOAD_MAP, "--file", f"INPUT_FILE={sat_csv}", "--resume-file", str(saved)])
    capsys.readouterr()
    assert main(["resume", str(saved)]) == 8
    assert (
        f"try again within an hour of its creation: runway-client resume {saved}"
        in capsys.readouterr().err
    )
    assert saved.exists()
    assert list(tmp_path.glob("*.json")) == [saved]  # no second file


def test_a_download_failing_after_a_successful_load_says_not_to_load_again(
    sb: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    sb.inject("download", "reset_mid_body", times=50)
    with pytest.raises(NetworkError) as caught:
        connect(sb).load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2026",
            download_to=tmp_path / "out",
            poll_interval=0.05,
        )
    (output_set,) = sb.output_sets()
    assert "The load succeeded and its run produced output set" in str(caught.value)
    assert f"runway-client outputs download {output_set.uid}" in str(caught.value)
    assert caught.value.pending is None
    assert sb.jobs()[0].started


def test_outputs_wait_finds_a_started_jobs_set(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    receipt = load(connect(sb), sat_csv)
    code = main(
        [
            "outputs",
            "wait",
            receipt.job_uid,
            "--poll-interval",
            "0.05",
            "--download",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["jobUid"] == receipt.job_uid
    assert (tmp_path / "studentAssessments.jsonl").exists()


# ---------------------------------------------------------------- found by a second round of attacks


def test_a_token_renewal_that_fails_before_start_still_names_the_job(
    sb: Sandbox, sat_csv: Path
) -> None:
    sb.inject("token", "stall", seconds=0)  # the first token is fine
    sb.inject("token", "status", status=503, times=10)  # ... its renewal is not
    sb.inject("start", "status", status=401)
    with pytest.raises(ServiceUnavailableError) as caught:
        load(connect(sb), sat_csv)
    (job,) = sb.jobs()
    assert caught.value.job_uid == job.uid
    assert caught.value.pending is not None  # so it can be resumed, not loaded twice


def test_a_start_that_got_through_before_a_401_is_a_success(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("start", "reset_before_answer")  # the job starts, the answer is lost
    sb.inject("start", "status", status=401)  # the repeat is refused: fresh token, once more
    receipt = load(connect(sb), sat_csv)
    assert sb.job(receipt.job_uid).started


@pytest.mark.parametrize("route", ["verify", "output_sets", "download_links"])
def test_the_read_side_also_gets_a_fresh_token_after_a_401(
    sb: Sandbox, sat_csv: Path, route: str, tmp_path: Path
) -> None:
    client = connect(sb)
    receipt = client.load_files(
        tenant_code="ea",
        bundle_name="assessments/MAP_Growth",
        input_files={"INPUT_FILE": sat_csv},
        school_year="2026",
        wait=5,
        poll_interval=0.05,
    )
    assert receipt.output_set is not None
    sb.inject(route, "status", status=401)
    if route == "verify":
        assert client.verify_token() == ("ea",)
    elif route == "output_sets":
        assert client.list_output_sets()[0].job_uid == receipt.job_uid
    else:
        assert client.download(receipt.output_set, tmp_path)


def test_threads_hitting_one_401_share_one_new_token(sb: Sandbox) -> None:
    import threading

    client = connect(sb)
    scopes = ("create:jobs", "partner:ea")
    refused = client.token_cache(scopes).unwrap()  # as if the API had just said 401 to it
    before = sb.received("token")
    got: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: got.append(client.token_cache(scopes, rejected=refused).unwrap())
        )
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sb.received("token") - before == 1  # one new token, not one per thread
    assert len({id(token) for token in got}) == 1
    assert got[0] is not refused


def test_one_blip_does_not_end_a_wait(sb: Sandbox, sat_csv: Path) -> None:
    client = connect(sb)
    sb.inject("output_sets", "status", status=502)
    receipt = client.load_files(
        tenant_code="ea",
        bundle_name="assessments/MAP_Growth",
        input_files={"INPUT_FILE": sat_csv},
        school_year="2026",
        wait=5,
        poll_interval=0.05,
    )
    assert receipt.output_set is not None


def test_resuming_a_started_job_uploads_nothing_again(sb: Sandbox, sat_csv: Path) -> None:
    sb.inject("start", "status", status=500, times=10)
    client = connect(sb)
    with pytest.raises(RunwayError) as caught:
        load(client, sat_csv)
    pending = caught.value.pending
    assert pending is not None
    sb.clear_faults()
    client.resume(pending)
    uploads = sb.received("upload")
    again = client.resume(pending)  # a second time: Runway says it is started already
    assert sb.received("upload") == uploads
    assert again.job_uid == pending.job.uid


def test_a_pending_job_of_another_partner_is_refused_before_any_upload(
    sb: Sandbox, sat_csv: Path
) -> None:
    from msgspec.structs import replace

    sb.inject("start", "status", status=500, times=10)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), sat_csv)
    pending = caught.value.pending
    assert pending is not None
    other = replace(pending, job=replace(pending.job, spec=replace(pending.job.spec, partner="zz")))
    uploads = sb.received("upload")
    with pytest.raises(InputError, match="belongs to partner 'zz'"):
        connect(sb).resume(other)
    assert sb.received("upload") == uploads


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: {**d, "job": {**d["job"], "upload_urls": {}}},
        lambda d: {
            **d,
            "receipts": [{**d["receipts"][0], "key": "NOPE"}]
            if d["receipts"]
            else [{"key": "NOPE"}],
        },
        lambda d: {**d, "job": {**d["job"], "uid": " "}},
    ],
)
def test_a_damaged_pending_job_is_an_input_error(
    sb: Sandbox, sat_csv: Path, damage: Callable[[dict[str, object]], dict[str, object]]
) -> None:
    sb.inject("start", "status", status=500, times=10)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), sat_csv)
    assert caught.value.pending is not None
    data = json.loads(caught.value.pending.to_json())
    broken = json.dumps(damage(data)).encode()
    assert isinstance(PendingJob.from_json(broken).failure(), InputError)


def test_a_dest_dir_behind_a_broken_symlink_is_refused_before_the_job(
    sb: Sandbox, sat_csv: Path, tmp_path: Path
) -> None:
    link = tmp_path / "gone"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="broken or looping symlink"):
        connect(sb).load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2026",
            download_to=link / "out",
        )
    assert sb.jobs() == ()


# ---------------------------------------------------------------- issue 11: resume correctness


class GrowsAfterPut(ScriptedTransport):
    """The file grows while its PUT runs: the object is stored, then the file is longer."""

    def __init__(self, path: Path) -> None:
        super().__init__(lambda step, n: None)
        self.path = path

    def put(self, url: str, body: object, *, headers: object, step: Step, **more: object) -> object:  # type: ignore[override]
        answer = self.inner.put(url, body, headers=headers, step=step)  # type: ignore[arg-type]
        with open(self.path, "ab") as file:
            file.write(b"more,rows\n")
        return answer


def test_a_refused_upload_is_never_started_by_resume(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(InputChangedError) as caught:
        load(connect(sb, transport=GrowsAfterPut(sat_csv)), sat_csv)
    error = caught.value
    (job,) = sb.jobs()
    assert not isinstance(error, InputError)  # a job exists: not "input before any request"
    assert error.exit_code not in (1, 3)
    assert error.job_uid == job.uid
    assert error.pending is not None
    assert error.pending.receipts == ()  # the refused file is not counted as uploaded
    with pytest.raises(InputChangedError):  # the object S3 holds was refused: never started
        connect(sb).resume(error.pending)
    assert not sb.job(job.uid).started
    saved = tmp_path / "job.json"
    saved.write_bytes(error.pending.to_json())
    use_sandbox_env(sb, monkeypatch)
    assert main(["resume", str(saved)]) == InputChangedError.exit_code
    shown = capsys.readouterr()
    assert "Uploaded 0 files" not in shown.out
    assert "INPUT_FILE" in shown.err
    assert not sb.job(job.uid).started


def test_a_resumed_receipt_lists_every_file_of_the_job(sb: Sandbox, tmp_path: Path) -> None:
    paths = {}
    for key in ("INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA"):
        paths[key] = tmp_path / f"{key.lower()}.csv"
        paths[key].write_bytes(key.encode() * 300)

    def second_put_fails(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "upload" and n >= 2:
            return Failure(StorageError("storage refused: InternalError", step=step, status=500))
        return None

    with pytest.raises(StorageError) as caught:
        connect(sb, transport=ScriptedTransport(second_put_fails)).load_files(
            tenant_code="ea", bundle_name="assessments/STAR", input_files=paths, school_year="2026"
        )
    assert caught.value.pending is not None
    receipt = connect(sb).resume(caught.value.pending)
    assert [f.key for f in receipt.files] == list(paths)


def test_resume_from_another_folder_uploads_the_original_file_or_refuses(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    other.mkdir()
    original = b"id,a\n1,2\n"
    (first / "in.csv").write_bytes(original)
    (other / "in.csv").write_bytes(b"id,b\n3,4\n")  # same name and size, other contents
    monkeypatch.chdir(first)
    sb.inject("upload", "status", status=500, times=10)
    with pytest.raises(StorageError) as caught:
        load(connect(sb), Path("in.csv"))  # a relative path, as typed
    pending = caught.value.pending
    assert pending is not None
    restored = PendingJob.from_json(pending.to_json()).unwrap()
    sb.clear_faults()
    monkeypatch.chdir(other)
    uploads = sb.received("upload")
    (first / "in.csv").write_bytes(b"id,c\n5,6\n")  # the original, edited in place (same size)
    with pytest.raises(InputChangedError, match="other contents") as refused:
        connect(sb).resume(restored)
    assert refused.value.job_uid == pending.job.uid
    assert sb.received("upload") == uploads  # nothing was sent
    assert not sb.job(pending.job.uid).started
    (first / "in.csv").write_bytes(original)  # put back as it was
    receipt = connect(sb).resume(restored)  # from the other folder: the original file
    stored = sb.job(receipt.job_uid).uploaded_sha256["INPUT_FILE"]
    assert stored == hashlib.sha256(original).hexdigest()


@pytest.mark.parametrize(
    ("damage", "names"),
    [
        (lambda d: d["job"]["spec"]["files"][0].update(path="/tmp/a\x00b.csv"), "files[0].path"),
        (
            lambda d: d["job"]["upload_urls"].update(INPUT_FILE="http://[::1/x"),
            "upload_urls['INPUT_FILE']",
        ),
        (lambda d: d["job"].update(uid=".."), "job.uid"),
        (lambda d: d["job"]["spec"]["files"][0].update(size="12"), "size"),
        (lambda d: d["job"]["spec"]["files"][0].update(path="in.csv"), "files[0].path"),
        (lambda d: d["job"]["spec"].update(tenant=""), "job.spec.tenant"),
    ],
)
def test_a_damaged_resume_file_is_an_input_error_naming_the_field(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[dict[str, Any]], None],
    names: str,
) -> None:
    sb.inject("upload", "status", status=500, times=10)
    with pytest.raises(StorageError) as caught:
        load(connect(sb), sat_csv)
    assert caught.value.pending is not None
    data = json.loads(caught.value.pending.to_json())
    damage(data)
    saved = tmp_path / "damaged.json"
    saved.write_text(json.dumps(data))
    use_sandbox_env(sb, monkeypatch)
    assert main(["resume", str(saved)]) == 3
    err = capsys.readouterr().err
    assert "InputError" in err
    assert names in err
    assert "Traceback" not in err


def test_a_job_uid_on_the_command_line_must_be_a_uuid(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_sandbox_env(sb, monkeypatch)
    assert main(["outputs", "wait", "..", "--timeout", "1"]) == 3
    assert "UUID" in capsys.readouterr().err
    assert main(["outputs", "download", "../x", "--dest", "out"]) == 3
    assert sb.received("output_sets") == sb.received("download_links") == 0


def test_a_first_start_answered_already_in_progress_is_not_a_success(
    sb: Sandbox, sat_csv: Path
) -> None:
    def someone_else_started_it(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "start":
            body = b'{"statusCode":400,"message":"Job already in progress: x"}'
            return Success(HttpResponse(status=400, body=body))
        return None

    with pytest.raises(RunwayError) as caught:
        load(connect(sb, transport=ScriptedTransport(someone_else_started_it)), sat_csv)
    assert caught.value.status == 400
    assert caught.value.job_uid == sb.jobs()[0].uid


def test_a_resume_file_already_there_does_not_drop_the_new_jobs(
    sb: Sandbox,
    sat_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_sandbox_env(sb, monkeypatch)
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / "job.json"
    stale.write_text('{"an": "older job"}')
    sb.inject("start", "status", status=500, times=10)
    args = [*LOAD_MAP, "--file", f"INPUT_FILE={sat_csv}", "--resume-file", str(stale)]
    assert main(args) == 8
    err = capsys.readouterr().err
    (job,) = sb.jobs()
    assert stale.read_text() == '{"an": "older job"}'  # not overwritten: it may be another job's
    saved = [p for p in tmp_path.glob("*.json") if p != stale]
    assert len(saved) == 1
    assert job.uid in saved[0].read_text()
    assert f"runway-client resume {saved[0]}" in " ".join(err.split())


@pytest.mark.parametrize(
    ("step", "answer", "kind"),
    [
        ("upload", HttpResponse(status=204, headers={"etag": '"e"'}), "ProtocolError"),
        ("upload", HttpResponse(status=200), "ProtocolError"),
        (
            "upload",
            HttpResponse(
                status=200,
                headers={"etag": '"e"'},
                body=b"<Error><Code>InternalError</Code><Message>oops</Message></Error>",
            ),
            "StorageError",
        ),
        ("start", HttpResponse(status=200, body=b"<html>maintenance page</html>"), "ProtocolError"),
    ],
)
def test_answers_outside_the_contract_are_never_a_started_load(
    sb: Sandbox, sat_csv: Path, step: str, answer: HttpResponse, kind: str
) -> None:
    """Issue 11 item 17, through the whole load: named, resumable, not started."""

    class Forging(ScriptedTransport):
        """Takes the whole body, as storage does, then answers ``answer``."""

        def put(self, url: str, body: Any, **kw: Any) -> Any:
            if step != "upload":
                return self.inner.put(url, body, **kw)
            while body.read(1024 * 1024):
                pass
            return Success(answer)

        def send(self, request: Any, **kw: Any) -> Any:
            if step == "start" and kw.get("step") == "start":
                return Success(answer)
            return self.inner.send(request, **kw)

    with pytest.raises(RunwayError) as caught:
        load(connect(sb, transport=Forging(lambda at, n: None)), sat_csv)
    (job,) = sb.jobs()
    assert type(caught.value).__name__ == kind
    assert caught.value.job_uid == job.uid
    assert caught.value.pending is not None
    assert not sb.job(job.uid).started
    if step == "upload":
        assert caught.value.pending.receipts == ()  # not counted as uploaded
        connect(sb).resume(caught.value.pending)  # uploads it again, then starts
        assert sb.job(job.uid).started


def test_a_created_job_answer_nested_too_deeply_names_the_job_not_a_traceback(
    sb: Sandbox, sat_csv: Path
) -> None:
    """Issue 11 item 15: a 201 whose body nests 100,000 arrays."""
    uid = "0b7e4c2a-1d3f-4e5a-9b6c-7d8e9f0a1b2c"
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"uid": "' + uid.encode() + b'", "uploadUrls": ' + deep + b"}"

    def forged(at: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        return Success(HttpResponse(status=201, body=body)) if at == "create_job" else None

    with pytest.raises(RunwayError) as caught:
        load(connect(sb, transport=ScriptedTransport(forged)), sat_csv)
    assert type(caught.value).__name__ == "ProtocolError"
    assert caught.value.job_uid == uid
