"""The command line left alone: signals, progress, the job said early, bounded waits.

Signals are sent to a real ``runway-client`` subprocess loading a generated file
into the sandbox (in this process), whose storage reads uploads slowly
(``Sandbox.throttle_uploads``) so the signal lands mid-upload.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client.cli import main
from runway_client.sandbox import Sandbox
from tests.conftest import EXAMPLE_SAT, sha256_file, use_sandbox_env, write_random

LOAD = ["load", "--tenant", "ea", "--bundle", "assessments/MAP_Growth", "--school-year", "2526"]
UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _env(sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWAY_")}
    env.update(
        RUNWAY_BASE_URL=sb.runway_base_url,
        RUNWAY_AUTH_BASE_URL=sb.auth_base_url,
        RUNWAY_CLIENT_ID=sb.client_id,
        RUNWAY_CLIENT_SECRET=sb.client_secret,
        RUNWAY_PARTNER=sb.partner_code,
        PYTHONUNBUFFERED="1",
    )
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "runway_client.cli", *args]


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    return write_random(path, 48 * 1024 * 1024)


def _wait_for_line(stream: object, pattern: str, timeout: float = 60.0) -> tuple[str, str]:
    """Read ``stream`` (a binary pipe) until a line matches ``pattern``; (line, all read)."""
    seen = ""
    fd = stream.fileno()  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    buffered = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        buffered += data
        *lines, rest = buffered.split(b"\n")
        buffered = rest
        for raw in lines:
            line = raw.decode()
            seen += line + "\n"
            if re.search(pattern, line):
                return line, seen
    raise AssertionError(f"no line matching {pattern!r} in: {seen!r}")


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose storage reads each upload at 2 MiB/s (48 MiB: about 24 s)."""
    with Sandbox() as sb:
        sb.throttle_uploads(2 * 1024 * 1024)
        yield sb


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_upload_saves_the_job_and_the_printed_command_finishes_it(
    slow_sandbox: Sandbox,
    big_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
    code: int,
) -> None:
    sb = slow_sandbox
    proc = subprocess.Popen(
        _cli(*LOAD, "--file", f"INPUT_FILE={big_file}"),
        cwd=tmp_path,
        env=_env(sb),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line, _ = _wait_for_line(proc.stderr, r"^Created job ")
        time.sleep(1.0)  # the upload is under way (24 s at this pace)
        proc.send_signal(signum)
        signalled = time.monotonic()
        _out, rest = proc.communicate(timeout=30)
    finally:
        proc.kill()
    took = time.monotonic() - signalled
    err = rest.decode()
    assert proc.returncode == code, err
    assert took < 10  # ended at the next block, not after the 24 s upload
    (job,) = sb.jobs()  # no second job, and this one not started
    assert job.uid in line
    assert not sb.job(job.uid).started
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert f"runway-client: {name}:" in err
    command = re.search(r"run: (runway-client resume \S+)", err)
    assert command is not None, err
    assert job.uid in err
    # nothing was stored: the upload was ended early (on a loaded machine the signal may
    # even come before the PUT began, so the storage may have seen no PUT at all)
    time.sleep(0.5)
    assert not any(u.stored for u in sb.uploads())
    assert len(sb.uploads()) <= 1
    # the printed command finishes the job
    sb.throttle_uploads(None)
    use_sandbox_env(sb, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(command.group(1).split()[1:]) == 0
    assert len(sb.jobs()) == 1
    assert sb.job(job.uid).started
    assert sha256_file(sb.object_path(job.uid, "INPUT_FILE")) == sha256_file(big_file)


def test_a_second_ctrl_c_exits_at_once_naming_the_job(tmp_path: Path) -> None:
    """The first Ctrl-C asks for a clean stop; while that stop is held up (here the start
    request gets no answer for a minute), a second one exits at once, naming the job.

    The first stop must be slow for the second signal to mean anything: a stop that
    already finished would leave nothing to interrupt (and the test would race it).
    """
    with Sandbox() as sb:
        sb.inject("start", "stall", seconds=60)
        proc = subprocess.Popen(
            _cli(*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}"),
            cwd=tmp_path,
            env=_env(sb),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_line(proc.stderr, r"^Created job ")
            deadline = time.monotonic() + 60
            while sb.received("start") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sb.received("start") == 1
            proc.send_signal(signal.SIGINT)
            _wait_for_line(proc.stderr, r"SIGINT received: stopping")
            stopped = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _out, rest = proc.communicate(timeout=30)
            took = time.monotonic() - stopped
        finally:
            proc.kill()
        (job,) = sb.jobs()
    assert proc.returncode == 130
    assert took < 30  # not after the stalled answer (60 s)
    assert f"SIGINT again: exiting at once; jobs created: {job.uid}" in rest.decode()


def test_sigint_while_waiting_names_the_started_job(tmp_path: Path) -> None:
    """Issue 11 item 9: Ctrl-C during ``load --wait`` after the start keeps the uid."""
    with Sandbox(run_delay=120) as sb:
        proc = subprocess.Popen(
            _cli(*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}", "--wait", "300"),
            cwd=tmp_path,
            env=_env(sb),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            line, _ = _wait_for_line(proc.stdout, r"^Started job ")  # said at once
            proc.send_signal(signal.SIGINT)
            _out, rest = proc.communicate(timeout=30)
        finally:
            proc.kill()
        (job,) = sb.jobs()
        assert sb.job(job.uid).started
    err = rest.decode()
    assert proc.returncode == 130
    assert line == f"Started job {job.uid}"
    assert f"runway-client outputs wait {job.uid}" in err
    assert "resume" not in err
    assert list(tmp_path.glob("runway-job-*.json")) == []


def test_started_job_and_heartbeat_come_before_the_wait_ends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sandbox(run_delay=1.5) as sb:
        use_sandbox_env(sb, monkeypatch)
        code = main(
            [
                *LOAD,
                "--file",
                f"INPUT_FILE={EXAMPLE_SAT}",
                "--wait",
                "60",
                "--poll-interval",
                "0.2",
            ]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("Started job ") == 1
    assert out.startswith("Started job ")
    assert "Waiting for the output set of job" in err
    assert "The run succeeded" in out


def test_wait_zero_is_not_a_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 11: ``--wait 0`` used to look once and exit 13 after a good load."""
    with Sandbox(run_delay=30) as sb:
        use_sandbox_env(sb, monkeypatch)
        code = main([*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}", "--wait", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("Started job ")


def test_a_failed_load_shows_the_uid_early(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with Sandbox() as sb:
        sb.inject("start", "status", status=400, times=1)
        use_sandbox_env(sb, monkeypatch)
        monkeypatch.chdir(tmp_path)
        code = main([*LOAD, "--file", f"INPUT_FILE={EXAMPLE_SAT}"])
        (job,) = sb.jobs()
    _out, err = capsys.readouterr()
    assert code != 0
    assert err.splitlines()[0].startswith(f"Created job {job.uid}")


def _pty_run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; (exit status, stdout, what the terminal got)."""
    import pty  # POSIX only, like the signals

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            screen += data
        elif proc.poll() is not None:
            break
    os.close(master)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode(), screen.decode(errors="replace")


# Big enough for several progress reports whatever the upload's block (the direct
# upload path hands the socket up to 8 MiB per call), slow enough to draw a rate.
MIB24 = 24 * 1024 * 1024


def test_progress_bars_on_a_terminal_and_none_in_a_pipe(tmp_path: Path) -> None:
    data = tmp_path / "big.csv"
    write_random(data, MIB24)
    with Sandbox() as sb:
        sb.throttle_uploads(6 * 1024 * 1024)
        env = _env(sb)
        args = _cli(*LOAD, "--file", f"INPUT_FILE={data}")
        code, out, screen = _pty_run(args, env, tmp_path)
        assert code == 0, screen
        assert re.search(r"[0-9.]+ [kKMG]?B/s", screen)  # the rate column
        assert "24.0 MiB" in screen  # bytes of the total
        assert "INPUT_FILE" in screen  # a bar per file
        piped = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, timeout=60)
        (first, second) = sb.jobs()
        # exact Content-Length and the whole body both times: progress changes nothing
        assert [u.content_length for u in sb.uploads()] == [MIB24] * 2
    assert piped.returncode == 0
    assert piped.stderr.decode() == f"Created job {second.uid}: uploading 1 file, 24.0 MiB\n"
    assert out.startswith(f"Started job {first.uid}")


def test_progress_json_one_event_per_line(tmp_path: Path) -> None:
    data = tmp_path / "big.csv"
    write_random(data, MIB24)
    with Sandbox() as sb:
        sb.throttle_uploads(6 * 1024 * 1024)
        done = subprocess.run(
            _cli(*LOAD, "--file", f"INPUT_FILE={data}", "--progress", "json", "--json"),
            cwd=tmp_path,
            env=_env(sb),
            capture_output=True,
            timeout=60,
        )
        (job,) = sb.jobs()
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.decode().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "job_created"
    assert kinds[-2:] == ["file_uploaded", "job_started"]
    assert {e["jobUid"] for e in events} == {job.uid}
    moving = [e for e in events if e["event"] == "file_progress" and e["sent"] < e["total"]]
    assert moving  # a 4 s upload reports progress on the way
    assert all(b["at"] - a["at"] >= 0.95 for a, b in itertools.pairwise(moving))
    assert json.loads(done.stdout)["jobUid"] == job.uid  # stdout stays the receipt


def test_call_timeout_from_the_settings_file_bounds_a_silent_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``call_timeout: 2`` in ``-c runway.yml``: a token endpoint that never answers ends
    the command in about 2 s (exit 11, DeadlineExceededError), not 4 x 120 s."""
    with socket.socket() as silent, Sandbox() as sb:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        use_sandbox_env(sb, monkeypatch)
        settings = tmp_path / "runway.yml"
        settings.write_text(
            f"auth_base_url: http://127.0.0.1:{silent.getsockname()[1]}\n"
            "call_timeout: 2\nupload_concurrency: 2\n"
        )
        began = time.monotonic()
        code = main(["verify", "-c", str(settings), "-v"])
        took = time.monotonic() - began
    _out, err = capsys.readouterr()
    assert code == 11, err
    assert took < 2 + 4
    assert "DeadlineExceededError" in err
    assert "setting call_timeout = 2 s" in err
    assert "setting upload_concurrency = 2" in err


def test_a_signal_during_resume_keeps_the_job_resumable(
    slow_sandbox: Sandbox, big_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = slow_sandbox
    saved = tmp_path / "job.json"
    env = _env(sb)
    for command in (
        _cli(*LOAD, "--file", f"INPUT_FILE={big_file}", "--resume-file", str(saved)),
        _cli("resume", str(saved)),
    ):
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            time.sleep(2.0)  # mid-upload (24 s at this pace)
            proc.send_signal(signal.SIGTERM)
            _out, rest = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 143, rest.decode()
        assert f"runway-client resume {saved}" in rest.decode()
        assert saved.exists()
    (job,) = sb.jobs()
    assert not sb.job(job.uid).started
    sb.throttle_uploads(None)
    use_sandbox_env(sb, monkeypatch)
    assert main(["resume", str(saved)]) == 0
    assert len(sb.jobs()) == 1
    assert sb.job(job.uid).started
    assert not saved.exists()
