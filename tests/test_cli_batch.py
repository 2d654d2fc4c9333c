"""``runway-client batch`` and ``-c/--config-file`` (in-process, against the sandbox)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runway_client.cli import EXIT_CODES, main
from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT, use_sandbox_env, write_random
from tests.test_cli_unattended import _env, _pty_run

ONE = """
defaults: {tenant_code: ea, school_year: "2526"}
loads:
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: sat.csv}
    bundle_params: {TEST_TYPE: SAT}
  - bundle_name: assessments/MAP_Growth
    input_files: {INPUT_FILE: map.csv}
"""


def _manifest(folder: Path, text: str = ONE) -> Path:
    (folder / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes())
    (folder / "map.csv").write_bytes(b"StudentId,RIT\n1,200\n")
    path = folder / "loads.yaml"
    path.write_text(text)
    return path


def test_exit_0_then_99_and_the_results_file_each_time(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    manifest, results = _manifest(tmp_path), tmp_path / "results.json"
    assert main(["batch", str(manifest), "--results-file", str(results)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "ENTRY",
        "TENANT",
        "BUNDLE",
        "JOB",
        "UID",
        "STATE",
        "ERROR",
    ]
    assert "2 started, 0 already started (skipped), 0 failed" in out
    first = json.loads(results.read_text())
    assert first["exit_code"] == 0
    assert first["summary"]["started"] == 2
    sat = first["entries"][0]
    assert sat["state"] == "started"
    assert sat["job_uid"] == sandbox.jobs()[0].uid
    assert sat["files"][0]["bytes"] == EXAMPLE_SAT.stat().st_size
    assert len(sat["files"][0]["sha256"]) == 64
    assert main(["batch", str(manifest), "--results-file", str(results)]) == 99
    assert json.loads(results.read_text())["summary"]["skipped"] == 2
    out = capsys.readouterr().out  # the rerun says plainly that it did nothing
    assert out.splitlines()[-1] == (
        "Nothing left to do: all 2 entries were already started by an earlier run."
    )
    assert main(["batch", str(manifest), "--json"]) == 99
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["nothing_to_do"] is True
    assert rerun["message"].startswith("Nothing left to do: all 2 entries were already started")
    assert [o["state"] for o in rerun["outcomes"]] == ["skipped", "skipped"]
    assert len(sandbox.jobs()) == 2
    assert 99 in EXIT_CODES
    assert 20 in EXIT_CODES


def test_a_failed_entry_exits_20_names_the_rerun_and_is_in_the_results(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    manifest, results = _manifest(tmp_path), tmp_path / "results.json"
    sandbox.inject("create_job", "status", status=400, times=1)
    code = main(["batch", str(manifest), "--results-file", str(results), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 20
    assert report["nothing_to_do"] is False
    assert report["message"].startswith("1 started, 0 already started (skipped), 1 failed")
    states = [o["state"] for o in report["outcomes"]]
    assert sorted(states) == ["failed", "started"]
    failed = json.loads(results.read_text())["entries"][states.index("failed")]
    assert (failed["step"], failed["error_kind"], failed["exit_code"]) == (
        "create_job",
        "rejected",
        6,
    )
    assert failed["files"][0]["sha256"]
    assert main(["batch", str(manifest)]) == 0  # the rerun retries only the failed one
    assert "Run the same command again" not in capsys.readouterr().out
    assert len(sandbox.jobs()) == 2


def test_bad_manifests_exit_3_with_every_problem_and_send_nothing(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    manifest = _manifest(
        tmp_path,
        ONE
        + "  - {bundle_name: assessments/STAR, input_files: {INPUT_FILE: gone.csv}}\n"
        + "  - {bundle_name: assessments/STAR, school_year: 1999, input_files: {INPUT_FILE: map.csv}}\n"
        + "  - {bundle_name: assessments/STAR, input_files: {INPUT_FILE: map.csv}, tenant: x}\n",
    )
    results = tmp_path / "r.json"
    assert main(["batch", str(manifest), "--results-file", str(results)]) == 3
    err = capsys.readouterr().err
    assert "3 problem(s); nothing was sent" in err
    assert "loads[2].input_files['INPUT_FILE']" in err
    assert "gone.csv': no such file" in err
    assert "loads[3].school_year 1999 is not a school year" in err
    assert "loads[4]: unknown field 'tenant'" in err
    written = json.loads(results.read_text())
    assert [e["label"] for e in written["entries"]] == ["loads[2]", "loads[3]", "loads[4]"]
    assert written["exit_code"] == 3
    assert sandbox.jobs() == ()
    assert sandbox.received("token") == 0


def test_skip_invalid_on_the_command_line_runs_the_valid_entries(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """``--skip-invalid`` loads the good entries, reports the bad one, and exits 20."""
    use_sandbox_env(sandbox, monkeypatch)
    manifest = _manifest(
        tmp_path, ONE + "  - {bundle_name: assessments/STAR, input_files: {INPUT_FILE: gone.csv}}\n"
    )
    results = tmp_path / "r.json"
    code = main(["batch", str(manifest), "--skip-invalid", "--results-file", str(results)])
    assert code == 20, EXIT_CODES[20]
    states = {e["label"]: e["state"] for e in json.loads(results.read_text())["entries"]}
    assert states == {"loads[0]": "started", "loads[1]": "started", "loads[2]": "invalid"}
    assert len(sandbox.jobs()) == 2
    assert all(sandbox.job(job.uid).started for job in sandbox.jobs())
    capsys.readouterr()


def test_a_yaml_syntax_error_exits_3_and_says_where(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("loads:\n  - bundle_name: [x\n")
    assert main(["batch", str(manifest)]) == 3
    assert "manifest: YAML syntax error at line 3" in capsys.readouterr().err


def test_dry_run_checks_the_token_and_creates_nothing(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    manifest = _manifest(tmp_path)
    assert main(["batch", str(manifest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would create") == 2
    assert "token valid; nothing sent" in out
    assert sandbox.jobs() == ()
    assert sandbox.received("verify") == 1
    assert not (tmp_path / "loads.yaml.journal").exists()
    monkeypatch.setenv("RUNWAY_CLIENT_SECRET", "wrong")
    results = tmp_path / "r.json"
    assert main(["batch", str(manifest), "--dry-run", "--results-file", str(results)]) == 4
    written = json.loads(results.read_text())  # written even when the run cannot begin
    assert written["exit_code"] == 4
    assert "authorize failed" in written["problems"][0]


def test_dry_run_labels_invalid_entries_invalid_with_their_problems(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """``--dry-run --skip-invalid``: the bad entry reads as a real run reports it, not as
    part of the plan."""
    use_sandbox_env(sandbox, monkeypatch)
    manifest = _manifest(
        tmp_path, ONE + "  - {bundle_name: assessments/STAR, input_files: {INPUT_FILE: gone.csv}}\n"
    )
    assert main(["batch", str(manifest), "--dry-run", "--skip-invalid"]) == 20
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.startswith("loads[")}
    state = out.splitlines()[0].index("STATE")
    assert [rows[label][state:].split()[0] for label in sorted(rows)] == [
        "plan",
        "plan",
        "invalid",
    ]
    assert "gone.csv': no such file" in rows["loads[2]"]
    assert "would create" in rows["loads[0]"]
    assert "3 entries checked (1 invalid, left out by --skip-invalid)" in out
    assert main(["batch", str(manifest), "--dry-run", "--skip-invalid", "--json"]) == 20
    outcomes = json.loads(capsys.readouterr().out)["outcomes"]
    assert [o["state"] for o in outcomes] == ["not_run", "not_run", "invalid"]
    assert sandbox.jobs() == ()


def test_settings_file_interpolates_the_secret_and_flags_win(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for variable in (
        "RUNWAY_BASE_URL",
        "RUNWAY_AUTH_BASE_URL",
        "RUNWAY_TOKEN_URL",
        "RUNWAY_CLIENT_ID",
        "RUNWAY_PARTNER",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MY_SECRET", sandbox.client_secret)
    monkeypatch.setenv("RUNWAY_CLIENT_SECRET", "the environment loses to the file")
    settings = tmp_path / "runway.yml"
    settings.write_text(
        f"base_url: {sandbox.runway_base_url}\n"
        f"token_url: {sandbox.token_url}\n"
        f"client_id: {sandbox.client_id}\n"
        "client_secret: ${MY_SECRET}\n"
        "partner: nobody\n"
        "read_timeout: 30\n"
        "retries: 2\n"
    )
    monkeypatch.setenv("RUNWAY_AUTH_BASE_URL", "http://127.0.0.1:9/unused")  # the file's pair wins
    code = main(["verify", "-c", str(settings), "--partner", sandbox.partner_code, "-v"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "partners: ea" in out
    assert "setting partner_code = ea (flag)" in err
    assert f"setting token_url = {sandbox.token_url} (settings file)" in err
    assert "setting read_timeout = 30 s (settings file)" in err
    assert "setting client_secret = ****** (set) (settings file)" in err
    assert "setting retries = 2 attempts" in err
    assert sandbox.client_secret not in err


def test_settings_file_problems_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = tmp_path / "runway.yml"
    settings.write_text("client_secret: ${UNSET_FOR_THIS_TEST}\n")
    monkeypatch.delenv("UNSET_FOR_THIS_TEST", raising=False)
    assert main(["verify", "-c", str(settings)]) == 3
    assert "UNSET_FOR_THIS_TEST is not set" in capsys.readouterr().err


@pytest.mark.parametrize(("signum", "code", "name"), [(2, 130, "SIGINT"), (15, 143, "SIGTERM")])
def test_a_signal_stops_the_batch_names_the_job_and_the_rerun_finishes_it(
    sandbox: Sandbox, tmp_path: Path, signum: int, code: int, name: str
) -> None:
    manifest = _manifest(tmp_path)
    # 16 MiB at 2 MiB/s: about 8 s, and far more than the loopback socket buffers hold,
    # so the signal lands while the client is still handing bytes to the socket (a body
    # small enough to sit whole in the kernel's buffers is only waiting for its answer)
    (tmp_path / "sat.csv").write_bytes(EXAMPLE_SAT.read_bytes() + b"0" * (16 << 20))
    sandbox.throttle_uploads(2 * 1024 * 1024)
    env = {
        **os.environ,
        "RUNWAY_BASE_URL": sandbox.runway_base_url,
        "RUNWAY_AUTH_BASE_URL": sandbox.auth_base_url,
        "RUNWAY_CLIENT_ID": sandbox.client_id,
        "RUNWAY_CLIENT_SECRET": sandbox.client_secret,
        "RUNWAY_PARTNER": sandbox.partner_code,
    }
    env.pop("RUNWAY_TOKEN_URL", None)
    command = [sys.executable, "-m", "runway_client.cli", "batch", str(manifest), "-q"]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not sandbox.jobs() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the upload is under way
    signalled = time.monotonic()
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    assert time.monotonic() - signalled < 6  # ended mid-upload, not after it
    (job,) = sandbox.jobs()  # no job was created after the signal
    assert not job.started
    said = err.decode()
    assert f"{name}: the batch stopped" in said
    assert f"loads[0]: job {job.uid} is created but not started" in said
    assert f"runway-client batch {manifest}" in said
    assert "cancelled" in out.decode()
    sandbox.throttle_uploads(None)
    again = subprocess.run(command, env=env, capture_output=True, timeout=90, check=False)
    assert again.returncode == 0, again.stderr
    jobs = sandbox.jobs()
    assert len(jobs) == 2  # the first entry's job was resumed, not made again
    assert jobs[0].uid == job.uid
    assert all(j.started for j in jobs)


def test_progress_json_gives_every_entrys_events_on_stderr_and_leaves_stdout_the_report(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    manifest = _manifest(tmp_path)
    assert main(["batch", str(manifest), "--progress", "json", "--json", "--concurrency", "2"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)  # stdout is the report alone
    assert [o["state"] for o in report["outcomes"]] == ["started", "started"]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    for job in sandbox.jobs():
        mine = [e["event"] for e in events if e.get("jobUid") == job.uid]
        assert mine[0] == "job_created"
        assert "file_uploaded" in mine
        assert mine[-1] == "job_started"


@pytest.mark.timeout(150)
def test_progress_bars_for_each_entry_on_a_terminal_and_none_in_a_pipe(tmp_path: Path) -> None:
    """``batch`` on a terminal draws a bar per file and one per job with the rate, for
    loads that run at once; piped, it prints only the lines and the report."""
    big = 12 * 1024 * 1024  # two seconds each at the pace below: several redraws
    for name in ("a.csv", "b.csv"):
        write_random(tmp_path / name, big)
    manifest = tmp_path / "loads.yaml"
    manifest.write_text(
        'defaults: {tenant_code: ea, school_year: "2526", bundle_name: assessments/MAP_Growth}\n'
        "loads:\n"
        "  - input_files: {INPUT_FILE: a.csv}\n"
        "  - input_files: {INPUT_FILE: b.csv}\n"
    )
    args = [sys.executable, "-m", "runway_client.cli", "batch", str(manifest)]
    with Sandbox() as sb:
        sb.throttle_uploads(6 * 1024 * 1024)
        env = _env(sb)
        code, out, screen = _pty_run([*args, "--concurrency", "2"], env, tmp_path)
        jobs = sb.jobs()
        assert code == 0, screen
        assert len(jobs) == 2
        for job in jobs:  # each load's own overall bar, and its lines
            assert f"job {job.uid[:8]} (all files)" in screen, screen
            assert f"Created job {job.uid}: uploading 1 file, 12.0 MiB" in screen
            assert f"Started job {job.uid}" in screen
        assert re.search(r"[0-9.]+ [kKMG]?i?B/s", screen)  # the rate column
        assert "12.0/12.0 MiB" in screen  # a bar that reached its total
        assert "INPUT_FILE" in screen  # a bar per file
        assert "2 started, 0 already started (skipped)" in out  # stdout: the report only
        assert "B/s" not in out
        piped = subprocess.run(
            [*args, "--journal", str(tmp_path / "again.journal")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=90,
        )
        again = [job for job in sb.jobs() if job.uid not in {j.uid for j in jobs}]
        assert [u.content_length for u in sb.uploads()] == [big] * 4  # bars change no body
    assert piped.returncode == 0, piped.stderr
    said = piped.stderr.decode()
    assert "B/s" not in said
    assert "(all files)" not in said
    assert sorted(said.splitlines()) == sorted(
        [f"Created job {job.uid}: uploading 1 file, 12.0 MiB" for job in again]
        + [f"Started job {job.uid}" for job in again]
    )
