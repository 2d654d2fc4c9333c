"""The batch journal: its state machine, its invariant, and crash recovery."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from returns.result import Failure, Success

from runway_client._errors import NetworkError, RequestRejectedError
from runway_client._journal import Create, FileRecord, Journal, Resume, Skip
from runway_client._models import InputFile, Job, JobSpec, SchoolYear, UploadReceipt

FILES = (FileRecord(key="INPUT_FILE", path="/d/a.csv", name="a.csv", bytes=3, sha256="ab" * 32),)


def _job(uid: str) -> Job:
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/PSAT_SAT",
        school_year=SchoolYear(end_year=2026),
        files=(InputFile(key="INPUT_FILE", path="/d/a.csv", name="a.csv", size=3),),
        params={"TEST_TYPE": "SAT"},
    )
    return Job(
        uid=uid,
        upload_urls={"INPUT_FILE": "https://s3/x?X-Amz-Signature=secret"},
        spec=spec,
        created_at=datetime.now(UTC),
    )


def _open(path: Path) -> Journal:
    journal = Journal.open(path).unwrap()
    journal.plan("e1", label="loads[0]", tenant="ea", bundle="b", school_year="2026", files=FILES)
    return journal


def test_the_steps_lead_from_create_to_resume_to_skip(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j")
    assert journal.next_action("e1") == Create()
    attempt = journal.begin_creating("e1").unwrap()
    journal.created(attempt, _job("u1"))
    receipt = UploadReceipt(
        key="INPUT_FILE", path="/d/a.csv", file_name="a.csv", bytes=3, sha256="ab" * 32, etag='"e"'
    )
    journal.uploaded(attempt, receipt)
    action = journal.next_action("e1")
    assert isinstance(action, Resume)
    assert action.pending.job.uid == "u1"
    assert action.pending.receipts == (receipt,)
    journal.started(attempt)
    assert journal.next_action("e1") == Skip(job_uid="u1")
    record = journal.entry("e1")
    assert record is not None
    assert (record.state, record.job_uid, record.files) == ("started", "u1", FILES)


def test_no_new_job_while_one_is_started_or_resumable(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j")
    attempt = journal.begin_creating("e1").unwrap()
    journal.created(attempt, _job("u1"))
    refused = journal.begin_creating("e1")
    assert isinstance(refused, Failure)
    assert "already has a created job u1" in refused.failure().message
    journal.started(attempt)
    assert isinstance(journal.begin_creating("e1"), Failure)


def test_the_database_refuses_a_second_started_job_for_an_entry(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j")
    first = journal.begin_creating("e1").unwrap()
    journal.created(first, _job("u1"))
    journal.abandoned(first, RequestRejectedError("x", step="start", status=400))
    second = journal.begin_creating("e1").unwrap()
    journal.created(second, _job("u2"))
    journal.started(second)
    with pytest.raises(sqlite3.IntegrityError):
        journal.started(first)


def test_a_failed_create_is_an_orphan_only_when_a_job_may_exist(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j")
    first = journal.begin_creating("e1").unwrap()
    journal.create_failed(first, RequestRejectedError("no", step="create_job"), maybe_created=False)
    second = journal.begin_creating("e1").unwrap()
    journal.create_failed(second, NetworkError("reset", step="create_job"), maybe_created=True)
    (orphan,) = journal.possible_orphans()
    assert (orphan.label, orphan.job_uid, orphan.why) == ("loads[0]", None, "unknown")
    record = journal.entry("e1")
    assert record is not None
    assert (record.state, record.error_kind) == ("failed", "network")


def test_a_process_killed_while_creating_leaves_a_possible_orphan(tmp_path: Path) -> None:
    path = tmp_path / "j"
    script = (
        "import os, sys\n"
        "from runway_client._journal import Journal\n"
        "j = Journal.open(sys.argv[1]).unwrap()\n"
        "j.plan('e1', label='loads[0]', tenant='ea', bundle='b', school_year='2026', files=())\n"
        "j.begin_creating('e1').unwrap()\n"
        "os._exit(9)  # dies between POST /jobs and its answer\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=False, timeout=60)
    journal = Journal.open(path).unwrap()
    assert [o.why for o in journal.possible_orphans()] == ["unknown"]
    assert journal.next_action("e1") == Create()
    assert isinstance(journal.begin_creating("e1"), Success)


def test_the_journal_is_private_and_taken_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = _open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds presigned URLs
    second = Journal.open(path)
    assert isinstance(second, Failure)
    assert "in use by another runway-client batch" in second.failure().message
    journal.close()
    assert isinstance(Journal.open(path), Success)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"not a database" * 100)
    outcome = Journal.open(path)
    assert isinstance(outcome, Failure)
    assert "cannot use the journal" in outcome.failure().message
