"""Simulated runs: what happens after ``POST /jobs/<uid>/start`` (CONTRACT.md "Output sets").

``run_delay`` seconds after a start, on a background thread, the run (one per accepted
start; a job may have several) fails when one of
the job's file names is in ``failing_names`` (or when writing its outputs fails); else it
writes the outputs (``derive.py``) under ``<storage>/output-sets/<set uid>/``, records an
output set, and only then marks the job ``succeeded``, so a caller that saw the state
also sees the set. A failed run records no set.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from runway_client.sandbox.derive import RunInput, derive_outputs
from runway_client.sandbox.jobs import FAILED, SUCCEEDED, JobStore
from runway_client.sandbox.output_sets import (
    OUTPUT_PREFIX,
    OutputObject,
    OutputSetStore,
    SandboxOutputSet,
    whole_millis,
)
from runway_client.sandbox.storage import object_path

_log = logging.getLogger(__name__)


def output_directory(storage: Path, set_uid: str) -> Path:
    """Where the files of output set ``set_uid`` are written."""
    return storage / OUTPUT_PREFIX / set_uid


class RunSimulator:
    """Runs started jobs after ``delay`` seconds; ``close()`` cancels and waits for them.

    ``directory``: the storage directory (inputs are read from, outputs written to, it);
    ``sent_to_ods``: every set's ``sentToOds``; ``compress``: store outputs gzip-compressed.
    """

    def __init__(
        self,
        *,
        jobs: JobStore,
        outputs: OutputSetStore,
        directory: Path,
        delay: float,
        failing_names: Iterable[str] = (),
        sent_to_ods: bool = True,
        compress: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._outputs = outputs
        self._directory = directory
        self._delay = delay
        self._failing_names = frozenset(failing_names)
        self._sent_to_ods = sent_to_ods
        self._compress = compress
        self._now = now
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._closed = False

    def schedule(self, uid: str, run: int) -> None:
        """Carry out run ``run`` (a number from ``JobStore.start_run``) of job ``uid``
        after the delay, on its own thread."""
        timer = threading.Timer(self._delay, self._run, args=(uid, run))
        timer.name = f"runway-sandbox-run-{uid}-{run}"
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
            timer.start()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel runs not yet begun and wait for those under way; no run starts afterwards."""
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        for timer in timers:
            timer.join(timeout)

    def _run(self, uid: str, run: int) -> None:
        job = self._jobs.get(uid)
        if job is None:  # pragma: no cover - jobs are never removed
            return
        if any(name in self._failing_names for name in job.files.values()):
            self._jobs.finish_run(uid, run, FAILED)
            return
        set_uid = str(uuid.uuid4())
        target = output_directory(self._directory, set_uid)
        inputs = [
            RunInput(key, name, object_path(self._directory, uid, key))
            for key, name in job.files.items()
        ]
        try:
            written = derive_outputs(uid, inputs, target, compress=self._compress)
        except Exception:  # a run that cannot read its inputs fails, as a real one would
            _log.exception("sandbox run of job %s failed", uid)
            shutil.rmtree(target, ignore_errors=True)
            self._jobs.finish_run(uid, run, FAILED)
            return
        created_at = whole_millis(self._now())
        output_set = SandboxOutputSet(
            uid=set_uid,
            job_uid=uid,
            partner=job.partner,
            tenant=job.tenant,
            school_year=job.school_year,
            bundle=job.bundle,
            files=tuple(file.name for file in written),
            sent_to_ods=self._sent_to_ods,
            created_at=created_at,
        )
        encoding = "gzip" if self._compress else None
        objects = [
            OutputObject(set_uid, file.name, file.path, file.size, file.md5, encoding, created_at)
            for file in written
        ]
        self._outputs.add(output_set, objects)
        self._jobs.finish_run(uid, run, SUCCEEDED)
