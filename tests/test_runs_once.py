"""A job runs once: no path sends start again for a job that may have run (issue 15 item 2).

Runway runs a job again each time it is started after its run ended (CONTRACT.md,
start): each test counts the job's runs in the sandbox (``Sandbox.runs``), which
follows the real server there, and the uploads sent over the job's inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client import LoadReceipt, RequestRejectedError, RunwayClient, RunwayError
from runway_client._batch import run_batch
from runway_client._models import PendingJob
from runway_client.cli import main
from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT, use_sandbox_env
from tests.test_retries import connect


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(run_delay=0.05) as running:
        yield running


@pytest.fixture
def slow_runs() -> Iterator[Sandbox]:
    """A sandbox whose runs go on for a minute: a repeat finds the run under way."""
    with Sandbox(run_delay=60) as running:
        yield running


@pytest.fixture
def sat(tmp_path: Path) -> Path:
    path = tmp_path / "sat.csv"
    path.write_bytes(EXAMPLE_SAT.read_bytes())
    return path


def load(client: RunwayClient, path: Path) -> LoadReceipt:
    return client.load_files(
        tenant_code="ea",
        bundle_name="assessments/PSAT_SAT",
        input_files={"INPUT_FILE": str(path)},
        bundle_params={"TEST_TYPE": "SAT"},
        school_year="2526",
    )


def created_then_failed_at_upload(sb: Sandbox, path: Path) -> PendingJob:
    """A job file as a failed load leaves it: created, nothing uploaded."""
    sb.inject("upload", "status", status=500, times=100)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), path)
    sb.clear_faults()
    assert caught.value.pending is not None
    return caught.value.pending


def test_a_job_file_resumed_again_after_its_run_ended_is_not_run_again(
    sb: Sandbox, sat: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: resume, the run ends, the same file resumed again."""
    pending = created_then_failed_at_upload(sb, sat)
    client = connect(sb)
    first = client.resume(pending)
    assert sb.wait_for_run(first.job_uid) == "succeeded"
    uploads = sb.received("upload")
    with caplog.at_level(logging.WARNING, logger="runway_client"):
        again = client.resume(pending)  # the same stale file: no receipts in it
    assert again.job_uid == first.job_uid
    assert again.output_set is not None
    assert again.output_set.job_uid == first.job_uid
    assert sb.received("upload") == uploads  # nothing uploaded over the job's inputs
    assert sb.received("start") == 2  # the first resume's probe (files missing) and its start
    assert sb.runs(first.job_uid) == ("succeeded",)
    assert "was started earlier and its run finished" in caplog.text


def test_resume_of_a_job_whose_run_is_under_way_reports_it_started(
    slow_runs: Sandbox, sat: Path
) -> None:
    """``Job already in progress`` to a resume is the run under way, not "try again"."""
    pending = created_then_failed_at_upload(slow_runs, sat)
    client = connect(slow_runs)
    first = client.resume(pending)
    uploads = slow_runs.received("upload")
    again = client.resume(pending)
    assert again.job_uid == first.job_uid
    assert slow_runs.received("upload") == uploads
    assert slow_runs.runs(first.job_uid) == ("running",)


def test_the_cli_resume_of_a_finished_job_exits_0_and_says_so(
    sb: Sandbox,
    sat: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pending = created_then_failed_at_upload(sb, sat)
    saved = tmp_path / "job.json"
    saved.write_bytes(pending.to_json())
    use_sandbox_env(sb, monkeypatch)
    assert main(["resume", str(saved)]) == 0
    assert not saved.exists()  # a finished job's file is removed ...
    assert sb.wait_for_run(pending.job.uid) == "succeeded"
    capsys.readouterr()
    saved.write_bytes(pending.to_json())  # ... but a copy of it may be resumed again
    assert main(["resume", str(saved)]) == 0
    shown = capsys.readouterr()
    assert f"Job {pending.job.uid} was started earlier: it is not started again" in shown.out
    assert sb.runs(pending.job.uid) == ("succeeded",)


def test_a_start_whose_answer_was_lost_is_not_sent_again_once_the_run_ended(
    sb: Sandbox, sat: Path
) -> None:
    """The step's own retry: the first start got through, its run ended before the repeat."""
    sb.inject("start", "reset_before_answer")
    sb.inject("token", "stall", seconds=0)  # the load's token comes at once ...
    sb.inject("token", "stall", seconds=0.5)  # ... the look's later: the run has ended
    receipt = load(connect(sb), sat)
    assert sb.received("start") == 1
    assert sb.runs(receipt.job_uid) == ("succeeded",)
    assert receipt.output_set is not None


def test_a_lost_start_answer_then_already_in_progress_is_started(
    slow_runs: Sandbox, sat: Path
) -> None:
    slow_runs.inject("start", "reset_before_answer")
    receipt = load(connect(slow_runs), sat)
    assert slow_runs.received("start") == 2
    assert slow_runs.runs(receipt.job_uid) == ("running",)


def test_when_the_run_cannot_be_looked_for_the_start_is_not_sent_again(
    sb: Sandbox, sat: Path
) -> None:
    """Not knowing whether the job ran, the client does not start it again: it keeps
    the job to resume later."""
    sb.inject("start", "reset_before_answer")
    sb.inject("output_sets", "status", status=500, times=100)
    with pytest.raises(RunwayError) as caught:
        load(connect(sb), sat)
    (job,) = sb.jobs()
    assert sb.received("start") == 1
    assert caught.value.job_uid == job.uid
    assert caught.value.pending is not None
    sb.clear_faults()
    assert sb.wait_for_run(job.uid) == "succeeded"
    receipt = connect(sb).resume(caught.value.pending)
    assert receipt.output_set is not None
    assert sb.received("start") == 1
    assert sb.runs(job.uid) == ("succeeded",)


def test_a_token_without_read_jobs_still_resumes_and_says_it_could_not_look(
    sat: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Sandbox(granted_scopes="create:jobs partner:ea", run_delay=60) as sb:
        pending = created_then_failed_at_upload(sb, sat)
        with caplog.at_level(logging.WARNING, logger="runway_client"):
            receipt = connect(sb).resume(pending)
        assert sb.runs(receipt.job_uid) == ("running",)
        assert "could not look for an output set" in caplog.text


def test_start_job_after_a_lost_answer_finds_the_run_and_sends_nothing(
    sb: Sandbox, sat: Path
) -> None:
    """The original client's ``start_job``, called again after its start failed
    without an answer (an Airflow retry of the task, say)."""
    client = connect(sb)
    files = {"INPUT_FILE": str(sat)}
    job = client.request_runway_job(
        "ea", "assessments/PSAT_SAT", files, {"TEST_TYPE": "SAT"}, "2526"
    )
    client.upload_to_s3(job, files)
    sb.inject("start", "reset_before_answer")
    sb.inject("output_sets", "status", status=503, times=100)
    with pytest.raises(RunwayError):
        client.start_job(job)
    sb.clear_faults()
    assert sb.wait_for_run(str(job["uid"])) == "succeeded"
    receipt = client.start_job(job)
    assert receipt.output_set is not None
    assert sb.received("start") == 1
    assert sb.runs(str(job["uid"])) == ("succeeded",)
    with pytest.raises(RequestRejectedError, match="not started again"):
        client.start_job(job)
    assert sb.received("start") == 1


def test_a_batch_rerun_after_a_lost_start_answer_runs_each_job_once(
    sb: Sandbox, sat: Path, tmp_path: Path
) -> None:
    client = connect(sb)
    loads = [
        {
            "tenant_code": "ea",
            "bundle_name": "assessments/PSAT_SAT",
            "school_year": "2526",
            "input_files": {"INPUT_FILE": str(sat)},
            "bundle_params": {"TEST_TYPE": "SAT"},
        }
    ]
    journal = tmp_path / "loads.journal"
    sb.inject("start", "reset_before_answer")
    sb.inject("output_sets", "status", status=500, times=100)
    first = run_batch(client.transport, client.config, loads, journal=journal).unwrap()
    assert [o.state for o in first.outcomes] == ["failed"]
    sb.clear_faults()
    (job,) = sb.jobs()
    assert sb.wait_for_run(job.uid) == "succeeded"
    second = run_batch(client.transport, client.config, loads, journal=journal).unwrap()
    assert [o.state for o in second.outcomes] == ["started"]
    third = run_batch(client.transport, client.config, loads, journal=journal).unwrap()
    assert [o.state for o in third.outcomes] == ["skipped"]
    assert len(sb.jobs()) == 1
    assert sb.received("start") == 1
    assert sb.runs(job.uid) == ("succeeded",)
