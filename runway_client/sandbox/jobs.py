"""The sandbox's job records and the thread-safe store that holds them.

Requests arrive on many server threads; every read and change goes through
``JobStore``'s lock, and callers only ever see frozen ``SandboxJob`` snapshots.

A job has runs (CONTRACT.md "POST /jobs/<uid>/start"): each start that is not refused
adds one, ``running`` -> ``succeeded`` or ``failed`` (the simulated run, see ``runs.py``).
A start is refused only while the latest run is ``running``; after it ended, a start
makes a new run of the same job.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

NOT_STARTED: Final = "not_started"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
FINAL_RUN_STATES: Final = frozenset({SUCCEEDED, FAILED})


@dataclass(frozen=True, slots=True)
class SandboxJob:
    """A snapshot of one job created through ``POST /jobs``.

    ``files``: file key -> file name as sent (trimmed); ``params``: as sent;
    ``uploaded_bytes`` / ``uploaded_sha256``: file key -> size in bytes / hex SHA-256 of
    the last successful PUT (a key is absent until its file is uploaded);
    ``created_at``: aware UTC; ``client_id``: the token's ``client_id`` (or ``azp``)
    claim; ``runs``: the state of each run, oldest first (``"running"``, ``"succeeded"``
    or ``"failed"``; CONTRACT.md "Output sets": only a succeeded run has an output set).
    """

    uid: str
    partner: str
    tenant: str
    bundle: str
    school_year: str
    files: Mapping[str, str]
    params: Mapping[str, str]
    uploaded_bytes: Mapping[str, int]
    uploaded_sha256: Mapping[str, str]
    created_at: datetime
    client_id: str
    runs: tuple[str, ...] = ()

    @property
    def started(self) -> bool:
        """A start was accepted at least once (the job has a run)."""
        return bool(self.runs)

    @property
    def run_state(self) -> str:
        """The latest run's state, ``"not_started"`` when the job has no run."""
        return self.runs[-1] if self.runs else NOT_STARTED


class JobStore:
    """Jobs by uid in creation order, plus the storage object key of each job's files."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._jobs: dict[str, SandboxJob] = {}
        self._objects: dict[str, tuple[str, str]] = {}

    def add(self, job: SandboxJob, object_keys: Mapping[str, str]) -> None:
        """Record a new job; ``object_keys`` maps each file key to its storage object key."""
        with self._lock:
            self._jobs[job.uid] = job
            for file_key, object_key in object_keys.items():
                self._objects[object_key] = (job.uid, file_key)

    def get(self, uid: str) -> SandboxJob | None:
        """The job's snapshot, or ``None``."""
        with self._lock:
            return self._jobs.get(uid)

    def all(self) -> tuple[SandboxJob, ...]:
        """Every job, in creation order."""
        with self._lock:
            return tuple(self._jobs.values())

    def locate(self, object_key: str) -> tuple[SandboxJob, str] | None:
        """The job and file key an object key was issued for, or ``None``."""
        with self._lock:
            found = self._objects.get(object_key)
            if found is None:
                return None
            uid, file_key = found
            return self._jobs[uid], file_key

    def record_upload(
        self, uid: str, file_key: str, size: int, sha256: str, commit: Callable[[], None]
    ) -> None:
        """Run ``commit`` (e.g. the rename into place) and record the upload, atomically."""
        with self._lock:
            commit()
            job = self._jobs[uid]
            self._jobs[uid] = dataclasses.replace(
                job,
                uploaded_bytes=MappingProxyType({**job.uploaded_bytes, file_key: size}),
                uploaded_sha256=MappingProxyType({**job.uploaded_sha256, file_key: sha256}),
            )

    def start_run(self, uid: str, *, failed: bool = False) -> int | None:
        """Add a run to the job and return its number (0 for the first), or ``None``
        while the latest run is still ``running`` (so only one start wins).

        ``failed``: the run is recorded as already ``failed`` (its executor did not start).
        """
        with self._lock:
            job = self._jobs[uid]
            if job.run_state == RUNNING:
                return None
            self._jobs[uid] = dataclasses.replace(
                job, runs=(*job.runs, FAILED if failed else RUNNING)
            )
            self._lock.notify_all()
            return len(job.runs)

    def finish_run(self, uid: str, run: int, state: str) -> None:
        """Record run ``run``'s outcome (``succeeded`` or ``failed``); wake ``wait_for_run``."""
        if state not in FINAL_RUN_STATES:
            raise ValueError(f"not a final run state: {state!r}")
        with self._lock:
            job = self._jobs[uid]
            runs = list(job.runs)
            runs[run] = state
            self._jobs[uid] = dataclasses.replace(job, runs=tuple(runs))
            self._lock.notify_all()

    def wait_for_run(self, uid: str, timeout: float) -> str:
        """The job's latest run state once final, or as it is after ``timeout`` seconds.

        ``KeyError`` for an unknown job.
        """
        with self._lock:
            if uid not in self._jobs:
                raise KeyError(uid)
            self._lock.wait_for(
                lambda: self._jobs[uid].run_state in FINAL_RUN_STATES, timeout=timeout
            )
            return self._jobs[uid].run_state


def new_job(
    *,
    uid: str,
    partner: str,
    tenant: str,
    bundle: str,
    school_year: str,
    files: Mapping[str, str],
    params: Mapping[str, str],
    created_at: datetime,
    client_id: str,
) -> SandboxJob:
    """A freshly created job: nothing uploaded, no run; mappings copied read-only."""
    return SandboxJob(
        uid=uid,
        partner=partner,
        tenant=tenant,
        bundle=bundle,
        school_year=school_year,
        files=MappingProxyType(dict(files)),
        params=MappingProxyType(dict(params)),
        uploaded_bytes=MappingProxyType({}),
        uploaded_sha256=MappingProxyType({}),
        created_at=created_at,
        client_id=client_id,
    )
