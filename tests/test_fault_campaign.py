"""A seeded fault campaign: hundreds of loads against the sandbox with injected faults.

For every load: it either succeeded with exactly one job, created and started,
every file byte-identical on the server; or it failed with a typed error that
names the job it created (or, for POST /jobs answered by silence, says the
outcome is unknown). No load ever makes two jobs, and no job is started with a
file missing or short. Failures that left a job are then resumed.

``RUNWAY_CAMPAIGN_SEED`` and ``RUNWAY_CAMPAIGN_LOADS`` change the run.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runway_client import LoadReceipt, OutcomeUnknownError, RunwayClient, RunwayError
from runway_client._retry import RetryPolicy
from runway_client.sandbox import Sandbox

SEED = int(os.environ.get("RUNWAY_CAMPAIGN_SEED", "20261129"))
LOADS = int(os.environ.get("RUNWAY_CAMPAIGN_LOADS", "220"))
READ_TIMEOUT = 0.3
POLICY = RetryPolicy(attempts=4, backoff_base=0.002, backoff_cap=0.02, retry_after_cap=0.05)

# (route, fault, extra arguments): every fault the sandbox can inject on the load path.
FAULTS: list[tuple[str, str, dict[str, float]]] = [
    ("token", "status", {"status": 500}),
    ("token", "status", {"status": 503}),
    ("token", "status", {"status": 429, "retry_after": 0.01}),
    ("token", "stall", {"seconds": 0.5}),
    ("token", "reset_before_answer", {}),
    ("token", "expire", {}),
    ("create_job", "status", {"status": 500}),
    ("create_job", "status", {"status": 503}),
    ("create_job", "status", {"status": 429, "retry_after": 0.01}),
    ("create_job", "stall", {"seconds": 0.5}),
    ("create_job", "reset_before_answer", {}),
    ("upload", "slow_down", {}),
    ("upload", "status", {"status": 500}),
    ("upload", "reset_mid_body", {}),
    ("upload", "reset_before_answer", {}),
    ("upload", "stall", {"seconds": 0.5}),
    ("upload", "expire", {}),
    ("start", "status", {"status": 500}),
    ("start", "status", {"status": 503}),
    ("start", "reset_before_answer", {}),
    ("start", "stall", {"seconds": 0.5}),
]


@dataclass
class Tally:
    loads: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    recovered: int = 0
    clean: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    resumed: int = 0
    duplicates: int = 0
    bytes_verified: int = 0


def make_inputs(folder: Path, rng: random.Random) -> dict[str, Path]:
    """Input files for the STAR bundle (1 to 3 files) of a few KiB to ~1.5 MiB."""
    keys = ["INPUT_FILE", *rng.sample(["INPUT_FILE_DS", "INPUT_FILE_SA"], rng.randint(0, 2))]
    files = {}
    for key in keys:
        path = folder / f"{key.lower()}-{rng.randrange(10**6)}.csv"
        rows = rng.choice([5, 50, 20000])
        path.write_bytes(
            b"id,score\n" + b"".join(b"%d,%d\n" % (i, rng.randrange(1000)) for i in range(rows))
        )
        files[key] = path
    return files


def verify_stored(sb: Sandbox, uid: str, files: dict[str, Path], tally: Tally) -> None:
    job = sb.job(uid)
    assert job.started
    for key, path in files.items():
        data = path.read_bytes()
        assert job.uploaded_bytes[key] == len(data), (uid, key)
        assert job.uploaded_sha256[key] == hashlib.sha256(data).hexdigest(), (uid, key)
        tally.bytes_verified += len(data)


def test_every_load_under_faults_ends_in_one_complete_job_or_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    with (
        Sandbox() as sb,
        RunwayClient(
            runway_base_url=sb.runway_base_url,
            auth_base_url=sb.auth_base_url,
            client_id=sb.client_id,
            client_secret=sb.client_secret,
            partner_code=sb.partner_code,
            read_timeout=READ_TIMEOUT,
            retry=POLICY,
        ) as client,
    ):
        for number in range(LOADS):
            files = make_inputs(tmp_path, rng)
            injected = rng.sample(FAULTS, rng.choice([0, 1, 1, 2, 2, 3]))
            for route, fault, extra in injected:
                times = rng.choice([1, 1, 2, 3, 5])
                sb.inject(route, fault, times=times, **extra)  # type: ignore[arg-type]
                tally.faults[f"{route}:{fault}"] += times
            before = {job.uid for job in sb.jobs()}
            outcome: LoadReceipt | RunwayError
            try:
                outcome = client.load_files(
                    tenant_code="ea",
                    bundle_name="assessments/STAR",
                    input_files=files,
                    school_year="2025-26",
                )
            except RunwayError as raised:
                outcome = raised
            sb.clear_faults()
            tally.loads += 1
            created = [job for job in sb.jobs() if job.uid not in before]
            if len(created) > 1:
                tally.duplicates += 1
            assert len(created) <= 1, f"load {number}: {len(created)} jobs"
            for job in created:  # a started job never lacks a file
                if job.started:
                    assert set(job.uploaded_bytes) == set(job.files), f"load {number}"
                    assert all(job.uploaded_bytes.values())
            if isinstance(outcome, LoadReceipt):
                assert len(created) == 1, f"load {number}"
                assert created[0].uid == outcome.job_uid
                verify_stored(sb, outcome.job_uid, files, tally)
                tally.recovered += 1 if injected else 0
                tally.clean += 0 if injected else 1
                continue
            error = outcome
            assert type(error) is not RunwayError  # a specific kind, never the bare base
            tally.failed[type(error).__name__] += 1
            if created and not isinstance(error, OutcomeUnknownError):
                assert error.job_uid == created[0].uid, f"load {number}: {error!r}"
            if isinstance(error, OutcomeUnknownError):
                assert not any(job.started for job in created)
            if error.pending is not None:  # the job can still be finished: do it
                resumed = client.resume(error.pending)
                assert resumed.job_uid == created[0].uid
                verify_stored(sb, resumed.job_uid, files, tally)
                tally.resumed += 1
            for path in files.values():
                path.unlink()
        assert len(sb.jobs()) <= LOADS
    summary = (
        f"fault campaign (seed {SEED}): {tally.loads} loads, "
        f"{sum(tally.faults.values())} faults injected {dict(sorted(tally.faults.items()))}, "
        f"{tally.clean} clean, {tally.recovered} recovered from faults, "
        f"{sum(tally.failed.values())} failed cleanly {dict(tally.failed)}, "
        f"{tally.resumed} of those resumed to completion, duplicates = {tally.duplicates}, "
        f"{tally.bytes_verified:,} bytes verified by sha256"
    )
    with capsys.disabled():  # the totals belong in the CI log
        print("\n" + summary)
    assert tally.duplicates == 0
    assert tally.loads >= 200
    assert tally.recovered > tally.loads // 4  # faults really were survived, not just avoided
