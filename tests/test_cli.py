"""The ``runway-client`` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import runway_client._errors
from runway_client._errors import RateLimitError, RunwayError
from runway_client.cli import EXIT_CODES, main
from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT, REPO, use_sandbox_env

LOAD = ["load", "--tenant", "ea", "--bundle", "assessments/PSAT_SAT", "--school-year", "2526"]


def test_load_into_the_embedded_sandbox_prints_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}", "--param", "TEST_TYPE=SAT", "--sandbox"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("Started job ")
    assert "INPUT_FILE: sat.csv" in out
    assert f"{EXAMPLE_SAT.stat().st_size:,} bytes" in out
    assert "school year 2026" in out
    # stderr (not a terminal here): only the job's uid, said as soon as the job existed
    uid = out.split()[2]
    assert err == f"Created job {uid}: uploading 1 file, 817 B\n"


def test_json_prints_the_load_receipt(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            *LOAD,
            "--file",
            f"INPUT_FILE={EXAMPLE_SAT}",
            "--param",
            "TEST_TYPE=SAT",
            "--sandbox",
            "--json",
        ]
    )
    receipt = json.loads(capsys.readouterr().out)
    assert code == 0
    assert receipt["schoolYear"] == "2026"  # camelCase, like Runway's API
    assert receipt["files"][0]["fileName"] == "sat.csv"
    assert len(receipt["files"][0]["sha256"]) == 64


def test_settings_come_from_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    code = main(
        [*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}", "--param", "TEST_TYPE=SAT", "--json"]
    )
    assert code == 0
    (job,) = sandbox.jobs()
    assert json.loads(capsys.readouterr().out)["jobUid"] == job.uid
    assert job.started


def test_missing_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in (
        "RUNWAY_BASE_URL",
        "RUNWAY_AUTH_BASE_URL",
        "RUNWAY_TOKEN_URL",
        "RUNWAY_CLIENT_ID",
        "RUNWAY_CLIENT_SECRET",
        "RUNWAY_PARTNER",
    ):
        monkeypatch.delenv(variable, raising=False)
    code = main([*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}"])
    err = capsys.readouterr().err
    assert code == 3
    assert "RUNWAY_CLIENT_SECRET" in err


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        (["--file", "INPUT_FILE=/no/such/sat.csv", "--param", "TEST_TYPE=SAT"], 3, "no such file"),
        (
            ["--file", f"INPUT_FILE={EXAMPLE_SAT}", "--param", "TEST_TYPE=GRE"],
            6,
            "Invalid param values: TEST_TYPE",
        ),
        (["--file", f"INPUT_FILE={EXAMPLE_SAT}"], 6, "Missing required params: TEST_TYPE"),
    ],
)
def test_failures_print_one_line_and_exit_with_the_kinds_code(
    capsys: pytest.CaptureFixture[str], extra: list[str], code: int, says: str
) -> None:
    assert main([*LOAD, *extra, "--sandbox"]) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("runway-client: error: ")
    assert says in err


@pytest.mark.parametrize(
    "bad", [["--file", "INPUT_FILE"], ["--file", "=x.csv"], ["--file", "A=a", "--file", "A=b"]]
)
def test_malformed_flags_are_usage_errors(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*LOAD, *bad, "--sandbox"])
    assert caught.value.code == 2
    assert "KEY" in capsys.readouterr().err


def test_help_documents_every_exit_code() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "runway_client.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in shown
    errors = [
        e
        for e in vars(runway_client._errors).values()
        if isinstance(e, type) and issubclass(e, RunwayError)
    ]
    for error in errors:
        if error is RunwayError:
            continue
        owner = next(c for c in error.__mro__ if "exit_code" in vars(c))  # where the code is set
        assert owner.__name__ in EXIT_CODES[error.exit_code], error
    codes = [
        vars(e)["exit_code"] for e in errors if "exit_code" in vars(e) and e is not RunwayError
    ]
    assert len(codes) == len(set(codes))  # one code per kind


def test_sandbox_command_prints_connection_settings_until_stopped(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runway_client.cli", "sandbox"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        settings = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines)
        assert set(settings) == {
            "RUNWAY_BASE_URL",
            "RUNWAY_AUTH_BASE_URL",
            "RUNWAY_CLIENT_ID",
            "RUNWAY_CLIENT_SECRET",
            "RUNWAY_PARTNER",
        }
        assert settings["RUNWAY_BASE_URL"].strip("'").endswith("/api/v1")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_verify_prints_the_partners(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    assert main(["verify"]) == 0
    assert capsys.readouterr().out == "The token is valid for partners: ea\n"


def test_load_wait_download_then_list_and_download_again(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    out_dir = tmp_path / "outputs"
    code = main(
        [
            *LOAD,
            "--file",
            f"INPUT_FILE={EXAMPLE_SAT}",
            "--param",
            "TEST_TYPE=SAT",
            "--wait",
            "10",
            "--poll-interval",
            "0.05",
            "--download",
            str(out_dir),
        ]
    )
    shown = capsys.readouterr().out
    assert code == 0, shown
    assert "The run succeeded: output set " in shown
    assert "studentAssessments.jsonl" in shown
    jsonl = out_dir / "studentAssessments.jsonl"
    assert len(jsonl.read_text().splitlines()) == 3  # the sample's three data rows

    assert (
        main(
            [
                "outputs",
                "list",
                "--json",
                "--created-after",
                "2020-01-01",  # a date alone, as the server accepts
                "--school-year",
                "2025-26",
            ]
        )
        == 0
    )
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["schoolYear"] == "2026"

    assert main(["outputs", "download", listed["uid"], "--dest", str(out_dir), "--json"]) == 0
    receipts = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in receipts} == set(listed["files"])
    assert all(r["skipped"] for r in receipts)  # same size already there


def test_created_after_reads_a_date_alone_as_midnight_utc() -> None:
    from runway_client.cli import _moment

    assert _moment("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert _moment("2026-01-01T08:00:00+02:00") == datetime(2026, 1, 1, 6, tzinfo=UTC)


def test_outputs_list_refuses_a_time_without_zone(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["outputs", "list", "--created-after", "2026-01-01T00:00:00"])
    assert caught.value.code == 2
    assert "no time zone" in capsys.readouterr().err


def test_a_wait_that_ends_without_outputs_exits_13(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sandbox(failing_file_names={"sat.csv"}) as sb:
        use_sandbox_env(sb, monkeypatch)
        code = main(
            [
                *LOAD,
                "--file",
                f"INPUT_FILE={EXAMPLE_SAT}",
                "--param",
                "TEST_TYPE=SAT",
                "--wait",
                "0.5",
                "--poll-interval",
                "0.05",
            ]
        )
    assert code == 13
    assert "OutputsNotReadyError" in capsys.readouterr().err


def test_verbose_logs_requests_without_secrets(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_sandbox_env(sandbox, monkeypatch)
    assert (
        main([*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}", "--param", "TEST_TYPE=SAT", "-v"]) == 0
    )
    err = capsys.readouterr().err
    assert "runway_client: PUT" in err
    assert "X-Amz-Signature=REDACTED" in err
    assert sandbox.client_secret not in err


def test_the_parameter_names_work_as_long_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "load",
            "--tenant-code",
            "ea",
            "--bundle-name",
            "assessments/PSAT_SAT",
            "--school-year",
            "2526",
            "--input-file",
            f"INPUT_FILE={EXAMPLE_SAT}",
            "--bundle-param",
            "TEST_TYPE=SAT",
            "--sandbox",
            "--json",
        ]
    )
    assert code == 0
    receipt = json.loads(capsys.readouterr().out)
    assert (receipt["tenant"], receipt["bundle"], receipt["params"]) == (
        "ea",
        "assessments/PSAT_SAT",
        {"TEST_TYPE": "SAT"},
    )


def test_a_rate_limited_token_endpoint_exits_16(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Sandbox() as sb:
        use_sandbox_env(sb, monkeypatch)
        sb.inject("token", "status", status=429, times=20, retry_after=0)
        code = main(["verify", "--retries", "2"])
    assert code == RateLimitError.exit_code == 16
    assert "RateLimitError" in capsys.readouterr().err


def test_version_flag_prints_the_version_and_v_stays_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11 item 10: EA's tools say --version; -v keeps meaning --verbose here."""
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"runway-client {version('runway-client')}"
    with pytest.raises(SystemExit):
        main(["verify", "-v", "--help"])
    assert "-v, --verbose" in capsys.readouterr().out
