"""``load_many``: many loads from a manifest, journaled, against the sandbox over HTTP."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client import InputError, RunwayClient
from runway_client._events import JobStarted, ProgressEvent
from runway_client._retry import RetryPolicy
from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT, runway_data_dir

FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.02)

MANIFEST = """
defaults:            # optional; any load field
  tenant_code: ea
  school_year: "2526"
loads:
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: data/sat.csv}     # relative paths are relative to the manifest
    bundle_params: {TEST_TYPE: SAT}
  - tenant_code: other
    bundle_name: assessments/STAR
    input_files: {INPUT_FILE: data/star.csv}
"""


@pytest.fixture
def two_tenants() -> Iterator[Sandbox]:
    with Sandbox(tenants=("ea", "other")) as sb:
        yield sb


def _client(sb: Sandbox) -> RunwayClient:
    return RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        partner_code=sb.partner_code,
        retry=FAST,
    )


def _write_example(folder: Path) -> Path:
    (folder / "data").mkdir()
    (folder / "data" / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes())
    (folder / "data" / "star.csv").write_bytes(b"StudentId,Score\n1,500\n2,610\n")
    manifest = folder / "loads.yaml"
    manifest.write_text(MANIFEST)
    return manifest


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_issue_example_loads_both_entries_and_a_rerun_skips_them(
    two_tenants: Sandbox, tmp_path: Path
) -> None:
    manifest = _write_example(tmp_path)
    with _client(two_tenants) as client:
        first = client.load_many(manifest)
        again = client.load_many(manifest)
    assert [o.state for o in first.outcomes] == ["started", "started"]
    assert first.all_started
    assert not first.nothing_to_do
    assert [o.state for o in again.outcomes] == ["skipped", "skipped"]
    assert again.nothing_to_do
    jobs = two_tenants.jobs()
    assert [(j.tenant, j.bundle, j.started) for j in jobs] == [
        ("ea", "assessments/PSAT_SAT", True),
        ("other", "assessments/STAR", True),
    ]
    assert [o.job_uid for o in again.outcomes] == [j.uid for j in jobs]
    assert jobs[0].uploaded_sha256 == {"INPUT_FILE": _sha(tmp_path / "data" / "sat.csv")}
    assert (tmp_path / "loads.yaml.journal").is_file()  # beside the manifest by default


def test_an_edited_file_is_a_new_load_and_an_unchanged_one_is_not(
    two_tenants: Sandbox, tmp_path: Path
) -> None:
    manifest = _write_example(tmp_path)
    with _client(two_tenants) as client:
        client.load_many(manifest)
        (tmp_path / "data" / "star.csv").write_bytes(b"StudentId,Score\n1,501\n")
        report = client.load_many(manifest)
    assert [o.state for o in report.outcomes] == ["skipped", "started"]
    assert len(two_tenants.jobs()) == 3


def test_bad_entries_are_all_named_and_nothing_is_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes())
    (tmp_path / "m.yaml").write_text(
        """
defaults: {tenant_code: ea, school_year: "2526", bundle_params: {TEST_TYPE: SAT}}
loads:
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: sat.csv}
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: missing.csv}
  - bundle_name: assessments/PSAT_SAT
    school_year: "2527"
    input_files: {INPUT_FILE: sat.csv}
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: sat.csv}
    shcool_year: "2526"
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: sat.csv}
"""
    )
    with _client(sandbox) as client, pytest.raises(InputError) as caught:
        client.load_many(tmp_path / "m.yaml")
    problems = caught.value.problems
    assert problems[0].startswith("loads[1].input_files['INPUT_FILE'] = ")
    assert problems[0].endswith("missing.csv': no such file; check the path")
    assert problems[1].startswith("loads[2].school_year '2527' is not a school year")
    assert problems[2].startswith("loads[3]: unknown field 'shcool_year'")
    assert problems[3].startswith("loads[4] is the same load as loads[0]")
    assert sandbox.received("token") == 0
    assert sandbox.jobs() == ()


def test_skip_invalid_runs_the_valid_entries(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes())
    loads = [
        {
            "tenant_code": "ea",
            "bundle_name": "assessments/PSAT_SAT",
            "school_year": "2526",
            "input_files": {"INPUT_FILE": str(tmp_path / "sat.csv")},
            "bundle_params": {"TEST_TYPE": "SAT"},
        },
        {
            "tenant_code": "ea",
            "bundle_name": "assessments/PSAT_SAT",
            "school_year": "2526",
            "input_files": {"INPUT_FILE": str(tmp_path / "nope.csv")},
        },
    ]
    with _client(sandbox) as client:
        report = client.load_many(loads, journal=tmp_path / "j", skip_invalid=True)
    assert [o.state for o in report.outcomes] == ["started", "invalid"]
    assert report.outcomes[1].error_kind == "input"
    assert "nope.csv" in str(report.outcomes[1].error)
    assert not report.all_started


def test_a_job_whose_start_failed_is_resumed_by_the_rerun_not_made_again(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = _one_load(tmp_path)
    sandbox.inject("start", "status", status=500, times=2)  # both attempts
    with _client(sandbox) as client:
        failed = client.load_many(manifest)
        (outcome,) = failed.outcomes
        assert (outcome.state, outcome.step, outcome.error_kind) == ("failed", "start", "server")
        assert outcome.job_uid == sandbox.jobs()[0].uid
        rerun = client.load_many(manifest)
    assert [o.state for o in rerun.outcomes] == ["started"]
    assert [(j.uid, j.started) for j in sandbox.jobs()] == [(outcome.job_uid, True)]
    assert rerun.possible_orphans == ()


def test_a_create_without_an_answer_is_a_listed_orphan_and_the_rerun_loads_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = _one_load(tmp_path)
    sandbox.inject("create_job", "reset_before_answer")  # the job is made; no answer comes
    with _client(sandbox) as client:
        first = client.load_many(manifest)
        assert first.outcomes[0].error_kind == "outcome_unknown"
        rerun = client.load_many(manifest)
    assert [o.state for o in rerun.outcomes] == ["started"]
    (orphan,) = rerun.possible_orphans
    assert (orphan.label, orphan.job_uid, orphan.why) == ("loads[0]", None, "unknown")
    assert sorted(j.started for j in sandbox.jobs()) == [False, True]


def test_expired_upload_urls_abandon_the_job_and_the_rerun_makes_a_new_one(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = _one_load(tmp_path)
    sandbox.inject("upload", "expire")
    with _client(sandbox) as client:
        first = client.load_many(manifest)
        assert first.outcomes[0].error_kind == "upload_expired"
        rerun = client.load_many(manifest)
    (orphan,) = rerun.possible_orphans
    assert (orphan.job_uid, orphan.why) == (first.outcomes[0].job_uid, "abandoned")
    assert [o.state for o in rerun.outcomes] == ["started"]
    assert [j.started for j in sandbox.jobs()] == [False, True]


def test_concurrent_loads_share_one_token_and_each_entry_loads_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    loads = []
    for n in range(12):
        path = tmp_path / f"f{n}.csv"
        path.write_bytes(b"StudentId,Score\n%d,1\n" % n)
        loads.append(
            {
                "tenant_code": "ea",
                "bundle_name": "assessments/MAP_Growth",
                "school_year": "2526",
                "input_files": {"INPUT_FILE": str(path)},
            }
        )
    with _client(sandbox) as client:
        report = client.load_many(loads, journal=tmp_path / "j", concurrency=6)
    assert report.count("started") == 12
    jobs = sandbox.jobs()
    assert len(jobs) == 12
    assert all(j.started for j in jobs)
    assert sandbox.received("token") == 1
    by_uid = {o.job_uid: o for o in report.outcomes}
    for job in jobs:
        planned = by_uid[job.uid].files[0]
        assert job.uploaded_sha256["INPUT_FILE"] == planned.sha256


def test_a_set_cancel_creates_no_job(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = _one_load(tmp_path)
    stop = threading.Event()
    stop.set()
    with _client(sandbox) as client:
        report = client.load_many(manifest, cancel=stop)
    assert [o.state for o in report.outcomes] == ["not_run"]
    assert sandbox.jobs() == ()


def test_real_samples_load_as_one_batch(sandbox: Sandbox, tmp_path: Path) -> None:
    data = runway_data_dir()
    if data is None:
        pytest.skip("../shared/runway-data is not beside this checkout")
    samples = sorted((data / "samples" / "PSAT_SAT").glob("*.csv"))
    if not samples:
        pytest.skip("no PSAT_SAT samples")
    kinds = {"psat_10": "PSAT 10", "psat_89": "PSAT 8/9", "psat_nmsqt": "PSAT/NMSQT", "sat": "SAT"}
    lines = ["defaults: {tenant_code: ea, school_year: '2025-26'}", "loads:"]
    for sample in samples:
        kind = next(v for k, v in kinds.items() if sample.stem.endswith(k))
        lines += [
            "  - bundle_name: assessments/PSAT_SAT",
            f"    input_files: {{INPUT_FILE: '{sample}'}}",
            f"    bundle_params: {{TEST_TYPE: '{kind}'}}",
        ]
    manifest = tmp_path / "samples.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    with _client(sandbox) as client:
        report = client.load_many(manifest, concurrency=2)
    assert report.count("started") == len(samples)
    stored = {j.uploaded_sha256["INPUT_FILE"] for j in sandbox.jobs()}
    assert stored == {_sha(s) for s in samples}


def _one_load(folder: Path) -> Path:
    (folder / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes())
    manifest = folder / "one.yaml"
    manifest.write_text(
        "loads:\n  - {tenant_code: ea, bundle_name: assessments/PSAT_SAT, school_year: '2526',\n"
        "     input_files: {INPUT_FILE: sat.csv}, bundle_params: {TEST_TYPE: SAT}}\n"
    )
    return manifest


def test_cancel_mid_batch_stops_before_the_next_job_and_progress_names_each_job(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    loads = []
    for n in range(3):
        path = tmp_path / f"f{n}.csv"
        path.write_bytes(b"StudentId,RIT\n%d,200\n" % n)
        loads.append(
            {
                "tenant_code": "ea",
                "bundle_name": "assessments/MAP_Growth",
                "school_year": "2526",
                "input_files": {"INPUT_FILE": str(path)},
            }
        )
    stop = threading.Event()
    heard: list[ProgressEvent] = []

    def on_progress(event: ProgressEvent) -> None:
        heard.append(event)
        if isinstance(event, JobStarted):
            stop.set()  # as a signal handler would, once the first load is in

    with _client(sandbox) as client:
        report = client.load_many(
            loads, journal=tmp_path / "j", cancel=stop, on_progress=on_progress
        )
        assert [o.state for o in report.outcomes] == ["started", "not_run", "not_run"]
        (job,) = sandbox.jobs()
        kinds = [type(e).__name__ for e in heard if getattr(e, "job_uid", None) == job.uid]
        assert kinds[0] == "JobCreated"
        assert kinds[-1] == "JobStarted"
        assert "FileUploaded" in kinds
        rest = client.load_many(loads, journal=tmp_path / "j")
    assert [o.state for o in rest.outcomes] == ["skipped", "started", "started"]
    assert len(sandbox.jobs()) == 3
