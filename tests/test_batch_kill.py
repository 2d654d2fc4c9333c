"""The journal's promise under ``kill -9``: a seeded campaign against the sandbox.

``runway-client batch`` runs as a subprocess on a manifest of 24 entries and is killed
with SIGKILL at seeded random instants, again and again; then it is rerun until it
says it is done (exit 0 or 99). The sandbox, which outlives every run, is then asked
what really happened: each entry has exactly one started job, whose stored files are
byte-identical to the inputs; every job created but never started is one the journal
counted as a possible orphan.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT

SEED = 20261202
ENTRIES = 24
KILLS = 12


def _write_manifest(folder: Path, rng: random.Random) -> tuple[Path, dict[str, bytes]]:
    """24 entries: MAP_Growth (one file), STAR (two files), PSAT_SAT (the example)."""
    data = folder / "data"
    data.mkdir()
    inputs: dict[str, bytes] = {}
    lines = ["defaults: {tenant_code: ea, school_year: '2526'}", "loads:"]
    for n in range(ENTRIES):
        body = b"StudentId,Score\n" + b"".join(
            b"%d,%d\n" % (i, rng.randrange(100, 800)) for i in range(rng.randrange(50, 4000))
        )
        name = f"f{n:02d}.csv"
        (data / name).write_bytes(body)
        inputs[name] = body
        if n % 3 == 0:
            lines += [
                "  - bundle_name: assessments/MAP_Growth",
                f"    input_files: {{INPUT_FILE: data/{name}}}",
            ]
        elif n % 3 == 1:
            extra = f"g{n:02d}.csv"
            (data / extra).write_bytes(body[::-1])
            inputs[extra] = body[::-1]
            lines += [
                "  - bundle_name: assessments/STAR",
                f"    input_files: {{INPUT_FILE: data/{name}, INPUT_FILE_DS: data/{extra}}}",
            ]
        else:
            sat = EXAMPLE_SAT.read_bytes() + b"%d\n" % n  # distinct contents per entry
            (data / name).write_bytes(sat)
            inputs[name] = sat
            lines += [
                "  - bundle_name: assessments/PSAT_SAT",
                f"    input_files: {{INPUT_FILE: data/{name}}}",
                "    bundle_params: {TEST_TYPE: SAT}",
            ]
    manifest = folder / "loads.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, inputs


def _sandbox_env(sb: Sandbox) -> dict[str, str]:
    """This environment with ``RUNWAY_*`` pointing at ``sb``, for a ``runway-client`` child."""
    env = {
        **os.environ,
        "RUNWAY_BASE_URL": sb.runway_base_url,
        "RUNWAY_AUTH_BASE_URL": sb.auth_base_url,
        "RUNWAY_CLIENT_ID": sb.client_id,
        "RUNWAY_CLIENT_SECRET": sb.client_secret,
        "RUNWAY_PARTNER": sb.partner_code,
    }
    env.pop("RUNWAY_TOKEN_URL", None)
    return env


def _work(sb: Sandbox) -> int:
    """Requests the sandbox has received that change something."""
    return sb.received("create_job") + sb.received("upload") + sb.received("start")


@pytest.mark.timeout(240)
def test_kill_9_at_random_instants_then_rerun_leaves_exactly_one_started_job_per_entry(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    manifest, inputs = _write_manifest(tmp_path, rng)
    results = tmp_path / "results.json"
    began = time.monotonic()
    with Sandbox(run_delay=0.05) as sb:
        env = _sandbox_env(sb)

        def batch(concurrency: int) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "runway_client.cli", "batch", str(manifest)]
            command += ["--concurrency", str(concurrency), "--results-file", str(results)]
            return subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        killed, finished_early, kill_points, progress = 0, 0, [], []
        # Rounds go on until KILLS kills have landed (a run that reaches its end before
        # its kill point does not count), bounded so a fast machine cannot loop for long.
        for _ in range(3 * KILLS):
            if killed >= KILLS:
                break
            # Answers held back now and then widen the windows a kill can land in:
            # between Runway creating a job and the journal hearing of it, and around start.
            sb.clear_faults()
            sb.inject(
                "create_job", "stall", seconds=rng.uniform(0.05, 0.3), times=rng.randrange(1, 4)
            )
            sb.inject("start", "stall", seconds=rng.uniform(0.05, 0.3), times=rng.randrange(1, 4))
            run = batch(rng.choice((1, 1, 4)))
            # A random instant, counted in work rather than seconds (so a loaded machine
            # still sees kills mid-batch): after 1 to 7 more requests, plus up to 50 ms.
            target = _work(sb) + rng.randrange(1, 8)
            extra = rng.uniform(0.0, 0.05)
            kill_points.append(target - _work(sb))
            deadline = time.monotonic() + 60
            while _work(sb) < target and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(extra)
            if run.poll() is not None:
                finished_early += 1  # it got to the end before the kill
            else:
                run.send_signal(signal.SIGKILL)
                run.wait(timeout=30)
                killed += 1
            progress.append(sum(j.started for j in sb.jobs()))
        sb.clear_faults()
        codes = []
        for _ in range(6):
            codes.append(batch(4).wait(timeout=90))
            if codes[-1] in (0, 99):
                break
        assert codes[-1] in (0, 99), codes
        assert batch(1).wait(timeout=90) == 99  # and now there is nothing left to do

        # The sandbox's own records.
        jobs = sb.jobs()
        started = [j for j in jobs if j.started]
        by_entry = Counter(tuple(sorted(j.files.values())) for j in started)
        assert len(started) == ENTRIES
        assert all(count == 1 for count in by_entry.values())
        assert len(by_entry) == ENTRIES
        verified = 0
        for job in started:
            for key, name in job.files.items():
                stored = sb.object_path(job.uid, key).read_bytes()
                assert stored == inputs[name], (job.uid, key)
                assert job.uploaded_sha256[key] == hashlib.sha256(inputs[name]).hexdigest()
                verified += len(stored)
        not_started = [j for j in jobs if not j.started]
        report = json.loads(results.read_text())
        orphans = report["possible_orphans"]
        named = {o["job_uid"] for o in orphans if o["job_uid"]}
        unnamed = sum(1 for o in orphans if not o["job_uid"])
        # Every job left unstarted on Runway was counted: named by uid, or in the window.
        unaccounted = [j.uid for j in not_started if j.uid not in named]
        assert len(unaccounted) <= unnamed, (unaccounted, orphans)
    elapsed = time.monotonic() - began
    print(
        f"\nkill -9 campaign (seed {SEED}): {ENTRIES} entries, {killed} kills "
        f"(+{finished_early} runs that ended first; each after n more requests: {kill_points}; "
        f"entries started "
        f"after each: {progress}), "
        f"{len(codes)} reruns to finish (exit codes {codes}, then 99), {len(jobs)} jobs created, "
        f"{len(started)} started (one per entry), {len(not_started)} never started; "
        f"journal counted {len(orphans)} possible orphans ({len(named)} by uid, {unnamed} "
        f"in the create window); {verified:,} bytes verified; {elapsed:.1f} s"
    )
    assert killed >= KILLS - 2
    # The kills landed while work was going on, not only before or after it.
    assert len(set(progress)) >= 4, progress


@pytest.mark.timeout(120)
def test_a_kill_mid_job_leaves_only_the_files_not_yet_uploaded_to_send(tmp_path: Path) -> None:
    """Each file's receipt is journaled the moment it is uploaded: a batch killed while
    the third file of a job goes up sends only that file again on the rerun."""
    data = tmp_path / "data"
    data.mkdir()
    sizes = {"INPUT_FILE": 40_000, "INPUT_FILE_DS": 50_000, "INPUT_FILE_SA": 8 * 1024 * 1024}
    for key, size in sizes.items():
        (data / f"{key.lower()}.csv").write_bytes(os.urandom(size))
    files = ", ".join(f"{key}: data/{key.lower()}.csv" for key in sizes)
    manifest = tmp_path / "loads.yaml"
    manifest.write_text(
        "defaults: {tenant_code: ea, school_year: '2526'}\nloads:\n"
        f"  - bundle_name: assessments/STAR\n    input_files: {{{files}}}\n"
    )
    with Sandbox() as sb:
        env = _sandbox_env(sb)
        command = [sys.executable, "-m", "runway_client.cli", "batch", str(manifest)]
        command += ["--upload-concurrency", "1"]  # one file after the other
        sb.throttle_uploads(512 * 1024)  # the 8 MiB file takes 16 s: the kill lands in it
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        until = time.monotonic() + 60
        while len([u for u in sb.uploads() if u.stored]) < 2:
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < until, "the first two files were not uploaded in time"
            time.sleep(0.02)
        time.sleep(0.3)  # the third file is on its way
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        sb.throttle_uploads(None)
        before = len(sb.uploads())
        (job,) = sb.jobs()
        assert not job.started
        rerun = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
        assert rerun.returncode == 0, rerun.stderr.decode()
        again = sb.uploads()[before:]
        (job,) = sb.jobs()  # resumed, not made again
        assert job.started
        assert len(again) == 1, [u.object_key for u in again]  # only the file not yet done
        assert again[0].content_length == sizes["INPUT_FILE_SA"]
        for key in sizes:
            stored = sb.object_path(job.uid, key).read_bytes()
            assert stored == (data / f"{key.lower()}.csv").read_bytes()
