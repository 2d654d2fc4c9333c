"""Flows under cancellation and with progress events, against the sandbox (real HTTP)."""

from __future__ import annotations

import hashlib
import itertools
import threading
from pathlib import Path

import pytest
from returns.result import Failure, Success

from runway_client import RunwayClient
from runway_client._errors import CancelledError
from runway_client._events import (
    FileProgress,
    FileUploaded,
    JobCreated,
    JobStarted,
    LoadFailed,
    ProgressEvent,
)
from runway_client._pipeline import load_files, prepare_job, resume
from runway_client.sandbox import Sandbox
from tests.conftest import write_random


def _star_files(tmp_path: Path, size: int = 300_000) -> dict[str, str]:
    files = {}
    for key in ("INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA"):
        path = tmp_path / f"{key.lower()}.csv"
        path.write_bytes(b"x" * size)
        files[key] = str(path)
    return files


def _spec(  # type: ignore[no-untyped-def]
    client: RunwayClient,
    files: dict[str, str],
    bundle: str = "assessments/STAR",
    bundle_params: dict[str, str] | None = None,
):
    return prepare_job(
        partner_code=client.config.partner_code,
        tenant_code="ea",
        bundle_name=bundle,
        school_year="2526",
        input_files=files,
        bundle_params=bundle_params,
    ).unwrap()


def test_cancel_before_create_makes_no_job(
    client: RunwayClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    stop = threading.Event()
    stop.set()
    outcome = load_files(
        client.transport, client.config, _spec(client, _star_files(tmp_path)), cancel=stop
    )
    assert isinstance(outcome, Failure)
    error = outcome.failure()
    assert isinstance(error, CancelledError)
    assert error.pending is None
    assert error.job_uid is None
    assert sandbox.jobs() == ()


def test_cancel_once_the_job_exists_keeps_it_resumable(
    client: RunwayClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    stop = threading.Event()
    seen: list[ProgressEvent] = []

    def on_progress(event: ProgressEvent) -> None:
        seen.append(event)
        if isinstance(event, JobCreated):
            stop.set()  # as a signal handler would, right after POST /jobs answered

    spec = _spec(client, _star_files(tmp_path))
    outcome = load_files(
        client.transport, client.config, spec, cancel=stop, on_progress=on_progress
    )
    assert isinstance(outcome, Failure)
    error = outcome.failure()
    assert isinstance(error, CancelledError)
    assert error.pending is not None
    assert error.job_uid == error.pending.job.uid
    (job,) = sandbox.jobs()
    assert job.uid == error.job_uid
    assert not sandbox.job(job.uid).started
    assert isinstance(seen[-1], LoadFailed)
    assert seen[-1].resumable
    # the saved job finishes; no second job is created
    finished = resume(client.transport, client.config, error.pending)
    assert isinstance(finished, Success)
    assert len(sandbox.jobs()) == 1
    assert sandbox.job(job.uid).started


def test_cancel_mid_upload_ends_the_transfer(
    client: RunwayClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Set after the first block of a 20 MiB file: the PUT ends, nothing is stored."""
    big = tmp_path / "big.csv"
    write_random(big, 20 * 1024 * 1024)
    stop = threading.Event()
    blocks: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        if isinstance(event, FileProgress):
            blocks.append(event.sent)
            stop.set()

    spec = _spec(client, {"INPUT_FILE": str(big)}, bundle="assessments/MAP_Growth")
    outcome = load_files(
        client.transport, client.config, spec, cancel=stop, on_progress=on_progress
    )
    error = outcome.failure()
    assert isinstance(error, CancelledError)
    assert error.step == "upload"
    assert error.pending is not None
    assert error.pending.receipts == ()
    assert len(blocks) == 1  # the hook ended the body at the next block
    assert not sandbox.object_path(error.pending.job.uid, "INPUT_FILE").exists()


def test_progress_events_of_a_load(client: RunwayClient, tmp_path: Path) -> None:
    seen: list[ProgressEvent] = []
    lock = threading.Lock()

    def on_progress(event: ProgressEvent) -> None:
        with lock:
            seen.append(event)

    files = _star_files(tmp_path, size=3 * 1024 * 1024 + 5)
    outcome = load_files(
        client.transport, client.config, _spec(client, files), on_progress=on_progress
    )
    receipt = outcome.unwrap()
    assert isinstance(seen[0], JobCreated)
    assert seen[0].job_uid == receipt.job_uid
    assert seen[0].total_bytes == 3 * (3 * 1024 * 1024 + 5)
    assert isinstance(seen[-1], JobStarted)
    assert seen[-1].job_uid == receipt.job_uid
    done = [e for e in seen if isinstance(e, FileUploaded)]
    assert sorted(e.key for e in done) == sorted(files)
    for key in files:
        sent = [e.sent for e in seen if isinstance(e, FileProgress) and e.key == key]
        assert sent == sorted(sent)
        assert sent[-1] == 3 * 1024 * 1024 + 5


@pytest.mark.parametrize("concurrency", [1, 3])
def test_receipts_keep_the_spec_order(sandbox: Sandbox, tmp_path: Path, concurrency: int) -> None:
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        upload_concurrency=concurrency,
    ) as client:
        files = _star_files(tmp_path)
        receipt = client.load_files("ea", "assessments/STAR", files, school_year="2526")
    assert [r.key for r in receipt.files] == list(files)
    for r in receipt.files:
        assert sandbox.object_path(receipt.job_uid, r.key).read_bytes() == Path(r.path).read_bytes()


def test_files_of_one_job_upload_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """The storage sees the three PUTs of a STAR job overlap in time (each read at
    1 MiB/s: one after another they would take three times as long)."""
    sandbox.throttle_uploads(1024 * 1024)
    files = _star_files(tmp_path, size=2 * 1024 * 1024)
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
    ) as client:
        receipt = client.load_files("ea", "assessments/STAR", files, school_year="2526")
    puts = sandbox.uploads()
    assert len(puts) == 3
    assert all(put.stored for put in puts)
    assert max(put.began for put in puts) < min(put.ended for put in puts)  # all at once
    assert [put.content_length for put in puts] == [2 * 1024 * 1024] * 3
    assert sandbox.job(receipt.job_uid).started


def test_upload_concurrency_one_is_one_after_another(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.throttle_uploads(4 * 1024 * 1024)
    files = _star_files(tmp_path, size=1024 * 1024)
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
        upload_concurrency=1,
    ) as client:
        client.load_files("ea", "assessments/STAR", files, school_year="2526")
    puts = sorted(sandbox.uploads(), key=lambda put: put.began)
    assert all(a.ended <= b.began for a, b in itertools.pairwise(puts))


# ----------------------------------------------------------------- hashing begun ahead


class _SeesCreate:
    """A transport that, as POST /jobs goes out, notes the threads alive and may run ``then``."""

    def __init__(self, inner: object, then: object = None) -> None:
        self.inner = inner
        self.then = then
        self.threads_at_create: list[str] = []

    def send(self, request, *, step, deadline=None):  # type: ignore[no-untyped-def]
        if step == "create_job":
            self.threads_at_create = [t.name for t in threading.enumerate()]
            if callable(self.then):
                self.then()
        return self.inner.send(request, step=step, deadline=deadline)  # type: ignore[attr-defined]

    def put(self, url, body, **kwargs):  # type: ignore[no-untyped-def]
        return self.inner.put(url, body, **kwargs)  # type: ignore[attr-defined]

    def get(self, url, sink, **kwargs):  # type: ignore[no-untyped-def]
        return self.inner.get(url, sink, **kwargs)  # type: ignore[attr-defined]


def test_the_files_are_hashed_from_before_the_job_is_created(
    client: RunwayClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The SHA-256 cannot take less than one core's hashing time: it begins as the
    files are checked, beside the token and the job's creation, not after."""
    path = write_random(tmp_path / "big.csv", 64 * 1024 * 1024)
    spec = _spec(
        client,
        {"INPUT_FILE": str(path)},
        bundle="assessments/PSAT_SAT",
        bundle_params={"TEST_TYPE": "SAT"},
    )
    seeing = _SeesCreate(client.transport)
    receipt = load_files(seeing, client.config, spec).unwrap()
    assert "runway-hash" in seeing.threads_at_create
    stored = sandbox.object_path(receipt.job_uid, "INPUT_FILE").read_bytes()
    assert receipt.files[0].sha256 == hashlib.sha256(stored).hexdigest()
    assert "runway-hash" not in [t.name for t in threading.enumerate()]  # all stopped


def test_a_file_replaced_after_the_check_is_hashed_as_sent_not_as_checked(
    client: RunwayClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The hashing begun ahead is of the file as it was then; a file put in its place
    (same size, other bytes) before the upload is hashed anew: the receipt's SHA-256
    is always that of the bytes storage got."""
    path = tmp_path / "sat.csv"
    path.write_bytes(b"a" * 200_000)
    replacement = tmp_path / "other.csv"
    replacement.write_bytes(b"b" * 200_000)
    spec = _spec(
        client,
        {"INPUT_FILE": str(path)},
        bundle="assessments/PSAT_SAT",
        bundle_params={"TEST_TYPE": "SAT"},
    )
    seeing = _SeesCreate(client.transport, then=lambda: replacement.replace(path))
    receipt = load_files(seeing, client.config, spec).unwrap()
    stored = sandbox.object_path(receipt.job_uid, "INPUT_FILE").read_bytes()
    assert stored == b"b" * 200_000
    assert receipt.files[0].sha256 == hashlib.sha256(stored).hexdigest()
