"""Where a load task keeps its job between Airflow tries (no Airflow import).

Airflow clears a task's XCom when a new try starts, so a job created by a try
that then failed (or was killed) is kept here instead, in a small SQLite file,
keyed by ``(dag_id, task_id, run_id, map_index)``. Each key is in one of two
states: ``pending`` (the job exists, is not known to be started: the next try
resumes it) or ``started`` (the receipt: the next try creates nothing).

The file holds presigned upload URLs, so it is created owner-only (``0600``) in
an owner-only folder (``0700``). The folder is ``RUNWAY_AIRFLOW_STATE_DIR``, else
``$AIRFLOW_HOME/runway_client``, else ``~/airflow/runway_client``; on a cluster
whose retries may land on another machine, point it at storage the workers share.

>>> import tempfile
>>> store = PendingStore(tempfile.mkdtemp())
>>> store.get(TaskKey("dag", "load", "run-1", -1)) is None
True
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, NamedTuple, TypeVar

from returns.result import Failure, Result

from runway_client import InputError, LoadReceipt, PendingJob, RunwayError

__all__ = ["PendingStore", "Saved", "TaskKey", "default_state_dir"]

FILE_NAME: Final = "loads.sqlite3"
_T = TypeVar("_T")


class TaskKey(NamedTuple):
    """One task instance: the same key on every try of it."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int


class Saved(NamedTuple):
    """What an earlier try left: exactly one of ``pending`` and ``receipt`` is set."""

    pending: PendingJob | None
    receipt: LoadReceipt | None


def default_state_dir() -> Path:
    """``RUNWAY_AIRFLOW_STATE_DIR``, else ``$AIRFLOW_HOME/runway_client``, else
    ``~/airflow/runway_client``."""
    given = os.environ.get("RUNWAY_AIRFLOW_STATE_DIR")
    if given:
        return Path(given)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "runway_client"


class PendingStore:
    """The jobs of load tasks, by task instance, in ``<directory>/loads.sqlite3``.

    Safe for many processes at once (SQLite's own locking; each call is one
    transaction). Methods raise ``RunwayError`` (``InputError``) when the folder
    or file cannot be used, or a saved row is damaged.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_state_dir()
        self.path = self.directory / FILE_NAME

    def __repr__(self) -> str:
        return f"PendingStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, timeout=60)
        except (OSError, sqlite3.Error) as exc:
            raise InputError.of(
                [f"cannot use the Runway task state file {str(self.path)!r}: {exc}"]
            ) from None
        try:
            with db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS loads (dag_id TEXT, task_id TEXT, run_id TEXT, "
                    "map_index INTEGER, state TEXT NOT NULL, data TEXT NOT NULL, "
                    "updated_at TEXT NOT NULL, PRIMARY KEY (dag_id, task_id, run_id, map_index))"
                )
                yield db
        finally:
            db.close()

    def get(self, key: TaskKey) -> Saved | None:
        """What an earlier try of ``key`` saved, or ``None``."""
        with self._db() as db:
            row = db.execute(
                "SELECT state, data FROM loads WHERE dag_id=? AND task_id=? AND run_id=? "
                "AND map_index=?",
                tuple(key),
            ).fetchone()
        if row is None:
            return None
        state, data = row
        if state == "started":
            return Saved(None, _unwrap(LoadReceipt.from_dict(json.loads(data))))
        return Saved(_unwrap(PendingJob.from_dict(json.loads(data))), None)

    def save_pending(self, key: TaskKey, pending: PendingJob) -> None:
        """Keep ``pending`` for the next try of ``key`` (replacing what was there)."""
        self._put(key, "pending", pending.to_dict())

    def save_started(self, key: TaskKey, receipt: LoadReceipt) -> None:
        """Record that ``key``'s job is started: later tries return ``receipt``."""
        self._put(key, "started", receipt.to_dict())

    def forget(self, key: TaskKey) -> None:
        """Drop ``key`` (its job can never be finished: the next try makes a new one)."""
        with self._db() as db:
            db.execute(
                "DELETE FROM loads WHERE dag_id=? AND task_id=? AND run_id=? AND map_index=?",
                tuple(key),
            )

    def _put(self, key: TaskKey, state: str, data: dict[str, object]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO loads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, state, json.dumps(data), datetime.now(UTC).isoformat()),
            )


def _unwrap(result: Result[_T, RunwayError]) -> _T:
    if isinstance(result, Failure):
        raise result.failure()
    return result.unwrap()
