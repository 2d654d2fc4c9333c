"""The command line's signal handling and progress view, without a network."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest

from runway_client._console import ProgressView, interrupts
from runway_client._events import (
    FileProgress,
    FileUploaded,
    JobCreated,
    JobStarted,
    LoadFailed,
    StillWaiting,
)


def test_a_signal_sets_cancel_and_the_old_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    quiet = os.open(os.devnull, os.O_WRONLY)
    with interrupts(stderr_fd=quiet) as stop:
        assert not stop.cancel.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        until = time.monotonic() + 5
        while not stop.cancel.is_set() and time.monotonic() < until:
            time.sleep(0.01)  # the handler runs in this (the main) thread
        assert stop.cancel.is_set()
        assert stop.exit_code == 143
        assert stop.signal_name == "SIGTERM"
    os.close(quiet)
    assert signal.getsignal(signal.SIGTERM) is before


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(sent: int, total: int = 100) -> FileProgress:
    return FileProgress(job_uid="j", key="K", file_name="f.csv", sent=sent, total=total)


def test_json_file_progress_at_most_once_a_second() -> None:
    err, clock = io.StringIO(), Clock()
    view = ProgressView("json", out=io.StringIO(), err=err, clock=clock)
    for at, sent in ((0.0, 10), (0.5, 20), (0.9, 30), (1.2, 40), (1.3, 100)):
        clock.now = at
        view(_progress(sent))
    sent_shown = [line.split('"sent":')[1].split(",")[0] for line in err.getvalue().splitlines()]
    assert sent_shown == ["10", "40", "100"]  # the last one (sent == total) always


def test_plain_says_the_job_early_and_a_heartbeat_now_and_then() -> None:
    out, err, clock = io.StringIO(), io.StringIO(), Clock()
    view = ProgressView("plain", out=out, err=err, clock=clock)
    view(JobCreated(job_uid="j", tenant="ea", bundle="b", files={"K": 2048}, total_bytes=2048))
    view(_progress(1024, 2048))
    view(FileUploaded(job_uid="j", key="K", file_name="f.csv", bytes=2048, seconds=1.0))
    view(JobStarted(job_uid="j"))
    for at in (0.0, 10.0, 29.0, 30.0, 45.0):
        clock.now = at
        view(StillWaiting(job_uid="j", waited=at, timeout=300))
    assert out.getvalue() == "Started job j\n"
    assert view.started == {"j"}
    lines = err.getvalue().splitlines()
    assert lines[0] == "Created job j: uploading 1 file, 2.0 KiB"
    assert [line for line in lines if line.startswith("Waiting")] == [
        "Waiting for the output set of job j: 0 s of 300 s",
        "Waiting for the output set of job j: 30 s of 300 s",
    ]


def test_none_prints_nothing() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = ProgressView("none", out=out, err=err)
    view(JobCreated(job_uid="j", tenant="ea", bundle="b", files={"K": 1}, total_bytes=1))
    view(JobStarted(job_uid="j"))
    assert out.getvalue() == err.getvalue() == ""


def test_bars_of_several_jobs_come_and_go() -> None:
    pytest.importorskip("rich")
    err = io.StringIO()
    view = ProgressView("bars", out=io.StringIO(), err=err)
    for uid in ("a", "b"):
        view(JobCreated(job_uid=uid, tenant="ea", bundle="x", files={"K": 10}, total_bytes=10))
        view(FileProgress(job_uid=uid, key="K", file_name="f", sent=5, total=10))
    view(JobStarted(job_uid="a"))
    assert view._bars is not None  # b is still uploading
    assert {uid for uid, _ in view._tasks} == {"b"}
    view(LoadFailed(job_uid="b", kind="network", step="upload", message="x"))
    assert view._bars is None
    view.close()
