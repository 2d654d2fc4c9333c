"""The batch journal: a crash-safe record of every entry's loads (SQLite, the only code
that touches the database).

State machine of one **job attempt** (table ``jobs``), written around every step::

    creating ──answer──▶ created(job uid, upload URLs, their expiry)
       │                    │  per file: uploaded(bytes, SHA-256, ETag)   (table uploads)
       │                    ├──start accepted──▶ started
       │                    └──cannot be finished (URLs expired, job unknown)──▶ abandoned
       ├──certainly nothing made (a 4xx, or never sent)──▶ not_created
       └──no answer, or the process died──▶ unknown          (a possible orphan)

and of one **entry** (table ``entries``: ``planned``, ``creating``, ``created``,
``started``, ``failed`` with error kind, step and message), the summary of its attempts.

An entry is identified by its content (``entry_id``: spec plus each file's size and
SHA-256, see ``runway_client._batch``): an edited file is a new entry.

**The invariant: each entry ends with exactly one started job.** It is enforced here,
in one place:

- ``begin_creating`` refuses a new job while the entry has a started job, or a
  created one that is not known to be unfinishable (that one must be resumed:
  its start may have got through before a crash);
- ``started`` is recorded for one job per entry (a unique index in the database);
- a job is only ever started after its ``created`` row is durable, so every job
  that can be started is known here.

The one window nothing can close: between Runway's answer to ``POST /jobs`` and
the ``created`` write. A run killed there leaves a ``creating`` row; the next open
turns it into ``unknown``, and ``possible_orphans`` lists it: a job that may exist on
Runway, never started (so it loads nothing).

Writes that matter (``creating``, ``created``, ``started``, ``abandoned``) are
committed with ``synchronous=FULL`` (on disk before the next request); the rest
with ``NORMAL`` (they survive a killed process, and losing them only means a file
is uploaded again). The database is opened in exclusive locking mode, so a second
``runway-client batch`` on the same journal is refused rather than racing the
first. The file is created 0600: it holds presigned upload URLs (secrets for an
hour). All methods are thread-safe (one connection behind a lock).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal

import msgspec
from returns.result import Failure, Result, Success

from runway_client._errors import InputError, RunwayError
from runway_client._models import Job, PendingJob, UploadReceipt

__all__ = [
    "UPLOAD_URL_LIFETIME",
    "Create",
    "EntryRecord",
    "FileRecord",
    "Journal",
    "Orphan",
    "Resume",
    "Skip",
]

UPLOAD_URL_LIFETIME: Final = timedelta(hours=1)
"""How long a job's upload URLs live after it is created (CONTRACT.md, "Presigned S3 URLs")."""

EntryState = Literal["planned", "creating", "created", "started", "failed"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entries (
    entry_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    tenant TEXT NOT NULL,
    bundle TEXT NOT NULL,
    school_year TEXT NOT NULL,
    files TEXT NOT NULL,
    state TEXT NOT NULL,
    job_uid TEXT,
    error_kind TEXT,
    error_step TEXT,
    error_message TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL REFERENCES entries(entry_id),
    state TEXT NOT NULL,
    job_uid TEXT,
    pending TEXT,
    urls_expire_at REAL,
    began_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_started_job_per_entry ON jobs(entry_id)
    WHERE state = 'started';
CREATE TABLE IF NOT EXISTS uploads (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    key TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    etag TEXT NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
);
"""


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One input file of an entry as planned: key, local path, name sent, bytes, SHA-256."""

    key: str
    path: str
    name: str
    bytes: int
    sha256: str


class EntryRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An entry as the journal holds it (for the report and the results file)."""

    entry_id: str
    label: str
    tenant: str
    bundle: str
    school_year: str
    files: tuple[FileRecord, ...]
    state: EntryState
    job_uid: str | None
    error_kind: str | None
    error_step: str | None
    error_message: str | None


class Orphan(msgspec.Struct, frozen=True, kw_only=True):
    """A job that may exist on Runway but will never be started by this batch.

    ``why``: ``"unknown"`` (``POST /jobs`` may have created it; no answer was
    recorded, so ``job_uid`` is ``None``) or ``"abandoned"`` (created, then found
    unfinishable: its upload URLs expired or Runway no longer knows it).
    """

    entry_id: str
    label: str
    job_uid: str | None
    why: str


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    """The entry has its started job: nothing to do."""

    job_uid: str


class Resume(msgspec.Struct, frozen=True, kw_only=True):
    """The entry has a created job not known to be started: finish it (no new job)."""

    job_id: int
    pending: PendingJob
    urls_expire_at: float


class Create(msgspec.Struct, frozen=True, kw_only=True):
    """The entry needs a new job."""


Action = Skip | Resume | Create

_PENDING: Final = msgspec.json.Decoder(PendingJob)
_RECEIPT: Final = msgspec.json.Decoder(UploadReceipt)
_FILES: Final = msgspec.json.Decoder(tuple[FileRecord, ...])


class Journal:
    """The journal of one batch (see the module docstring). Open with ``Journal.open``.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     j = Journal.open(os.path.join(d, "batch.journal")).unwrap()
    ...     j.plan("e1", label="loads[0]", tenant="ea", bundle="b", school_year="2026", files=())
    ...     j.next_action("e1")
    ...     j.close()
    Create()
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Result[Journal, RunwayError]:
        """Open (or create, mode 0600) the journal at ``path`` and take it for this process.

        A run that died leaves ``creating`` attempts: they become ``unknown`` (possible
        orphans) here. ``InputError`` if the file cannot be opened, is not a journal,
        or another process is using it.
        """
        where = Path(path)
        try:
            if not where.exists():
                os.close(os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            connection = sqlite3.connect(
                where, timeout=2.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            return Failure(InputError.of([f"cannot open the journal {str(where)!r}: {exc}"]))
        try:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(_SCHEMA)
            journal = cls(connection, where)
            with journal._write(durable=True) as db:
                db.execute(
                    "UPDATE jobs SET state = 'unknown', updated_at = ? WHERE state = 'creating'",
                    (time.time(),),
                )
                db.execute(
                    "UPDATE entries SET state = 'planned', updated_at = ? WHERE state = 'creating'",
                    (time.time(),),
                )
        except sqlite3.Error as exc:
            connection.close()
            busy = "locked" in str(exc)
            return Failure(
                InputError.of(
                    [
                        f"the journal {str(where)!r} is in use by another runway-client batch; "
                        "wait for it to finish"
                        if busy
                        else f"cannot use the journal {str(where)!r}: {exc}"
                    ]
                )
            )
        return Success(journal)

    def close(self) -> None:
        """Close the database (releasing it for another run)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self, *, durable: bool) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable`` ones are on disk when it ends (FULL)."""
        with self._lock:
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---------------------------------------------------------------- planning

    def plan(
        self,
        entry_id: str,
        *,
        label: str,
        tenant: str,
        bundle: str,
        school_year: str,
        files: tuple[FileRecord, ...],
    ) -> None:
        """Record an entry of this run (``planned``, if new; an old one keeps its state)."""
        now = time.time()
        with self._write(durable=False) as db:
            db.execute(
                "INSERT INTO entries (entry_id, label, tenant, bundle, school_year, files, "
                "state, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'planned', ?) "
                "ON CONFLICT(entry_id) DO UPDATE SET label = excluded.label, "
                "files = excluded.files",
                (
                    entry_id,
                    label,
                    tenant,
                    bundle,
                    school_year,
                    msgspec.json.encode(files).decode(),
                    now,
                ),
            )

    def next_action(self, entry_id: str) -> Action:
        """What a run must do for the entry: ``Skip`` (started), ``Resume`` (a created job
        not known to be started or unfinishable), or ``Create``."""
        with self._lock:
            started = self._db.execute(
                "SELECT job_uid FROM jobs WHERE entry_id = ? AND state = 'started'", (entry_id,)
            ).fetchone()
            if started is not None:
                return Skip(job_uid=started[0])
            created = self._db.execute(
                "SELECT id, pending, urls_expire_at FROM jobs WHERE entry_id = ? "
                "AND state = 'created' ORDER BY id DESC LIMIT 1",
                (entry_id,),
            ).fetchone()
            if created is None:
                return Create()
            job_id, pending_json, expires = created
            receipts = tuple(
                _RECEIPT.decode(row[0])
                for row in self._db.execute(
                    "SELECT receipt FROM uploads WHERE job_id = ? ORDER BY rowid", (job_id,)
                )
            )
        pending = _PENDING.decode(pending_json)
        return Resume(
            job_id=job_id,
            pending=PendingJob(job=pending.job, receipts=receipts),
            urls_expire_at=expires,
        )

    # ---------------------------------------------------------------- the steps

    def begin_creating(self, entry_id: str) -> Result[int, RunwayError]:
        """Record, durably, that ``POST /jobs`` is about to be sent for the entry; returns
        the attempt's id. Refused (``InputError``) when the entry has a started job or
        a created one to resume: the invariant's guard."""
        now = time.time()
        with self._write(durable=True) as db:
            blocking = db.execute(
                "SELECT state, job_uid FROM jobs WHERE entry_id = ? "
                "AND state IN ('started', 'created', 'creating')",
                (entry_id,),
            ).fetchone()
            if blocking is not None:
                return Failure(
                    InputError.of(
                        [
                            f"entry {entry_id[:12]} already has a {blocking[0]} job "
                            f"{blocking[1] or ''}: no new job is made for it".replace("  ", " ")
                        ]
                    )
                )
            cursor = db.execute(
                "INSERT INTO jobs (entry_id, state, began_at, updated_at) "
                "VALUES (?, 'creating', ?, ?)",
                (entry_id, now, now),
            )
            db.execute(
                "UPDATE entries SET state = 'creating', job_uid = NULL, error_kind = NULL, "
                "error_step = NULL, error_message = NULL, updated_at = ? WHERE entry_id = ?",
                (now, entry_id),
            )
            job_id = cursor.lastrowid
        assert job_id is not None
        return Success(job_id)

    def created(self, job_id: int, job: Job) -> None:
        """Runway answered ``POST /jobs``: record the job uid, its upload URLs and their
        expiry, durably, before anything is uploaded."""
        now = time.time()
        expires = (job.created_at + UPLOAD_URL_LIFETIME).timestamp()
        pending = PendingJob(job=job).to_json().decode()
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE jobs SET state = 'created', job_uid = ?, pending = ?, "
                "urls_expire_at = ?, updated_at = ? WHERE id = ?",
                (job.uid, pending, expires, now, job_id),
            )
            db.execute(
                "UPDATE entries SET state = 'created', job_uid = ?, updated_at = ? "
                "WHERE entry_id = (SELECT entry_id FROM jobs WHERE id = ?)",
                (job.uid, now, job_id),
            )

    def create_failed(self, job_id: int, error: RunwayError, *, maybe_created: bool) -> None:
        """``POST /jobs`` failed: ``maybe_created`` (no answer, or a 5xx after which Runway
        may have made the job) leaves a possible orphan (``unknown``)."""
        state = "unknown" if maybe_created else "not_created"
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?",
                (state, time.time(), job_id),
            )
            self._entry_failed(db, self._entry_of(db, job_id), error)

    def uploaded(self, job_id: int, receipt: UploadReceipt) -> None:
        """One file of the job is uploaded (bytes, SHA-256, ETag)."""
        with self._write(durable=False) as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (job_id, key, bytes, sha256, etag, receipt) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    receipt.key,
                    receipt.bytes,
                    receipt.sha256,
                    receipt.etag,
                    msgspec.json.encode(receipt).decode(),
                ),
            )

    def started(self, job_id: int) -> None:
        """Runway accepted the job's start (or said it was started already): the entry is
        done. A second started job for one entry is refused by the database
        (``sqlite3.IntegrityError``): that would be a bug, never papered over."""
        now = time.time()
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE jobs SET state = 'started', updated_at = ? WHERE id = ?", (now, job_id)
            )
            db.execute(
                "UPDATE entries SET state = 'started', job_uid = (SELECT job_uid FROM jobs "
                "WHERE id = ?), error_kind = NULL, error_step = NULL, error_message = NULL, "
                "updated_at = ? WHERE entry_id = (SELECT entry_id FROM jobs WHERE id = ?)",
                (job_id, now, job_id),
            )

    def abandoned(self, job_id: int, error: RunwayError) -> None:
        """The created job can never be finished (its upload URLs expired, or Runway no
        longer knows it): the next run makes a new one; this one is a listed orphan."""
        with self._write(durable=True) as db:
            db.execute(
                "UPDATE jobs SET state = 'abandoned', updated_at = ? WHERE id = ?",
                (time.time(), job_id),
            )
            self._entry_failed(db, self._entry_of(db, job_id), error)

    def failed(self, entry_id: str, error: RunwayError) -> None:
        """The entry's step failed with ``error``; a created job stays resumable."""
        with self._write(durable=False) as db:
            self._entry_failed(db, entry_id, error)

    def _entry_failed(self, db: sqlite3.Connection, entry_id: str, error: RunwayError) -> None:
        db.execute(
            "UPDATE entries SET state = 'failed', error_kind = ?, error_step = ?, "
            "error_message = ?, job_uid = COALESCE(?, job_uid), updated_at = ? "
            "WHERE entry_id = ?",
            (
                error.kind,
                error.step,
                " ".join(str(error).split()),
                error.job_uid,
                time.time(),
                entry_id,
            ),
        )

    def _entry_of(self, db: sqlite3.Connection, job_id: int) -> str:
        row = db.execute("SELECT entry_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job attempt {job_id} in the journal")
        return str(row[0])

    # ---------------------------------------------------------------- reading

    def entry(self, entry_id: str) -> EntryRecord | None:
        """The entry's record, or ``None`` if it was never planned."""
        with self._lock:
            row = self._db.execute(
                "SELECT entry_id, label, tenant, bundle, school_year, files, state, job_uid, "
                "error_kind, error_step, error_message FROM entries WHERE entry_id = ?",
                (entry_id,),
            ).fetchone()
        if row is None:
            return None
        return EntryRecord(
            entry_id=row[0],
            label=row[1],
            tenant=row[2],
            bundle=row[3],
            school_year=row[4],
            files=_FILES.decode(row[5]),
            state=row[6],
            job_uid=row[7],
            error_kind=row[8],
            error_step=row[9],
            error_message=row[10],
        )

    def possible_orphans(self) -> tuple[Orphan, ...]:
        """Jobs that may exist on Runway and will never be started by this batch."""
        with self._lock:
            rows = self._db.execute(
                "SELECT jobs.entry_id, entries.label, jobs.job_uid, jobs.state FROM jobs "
                "JOIN entries USING (entry_id) WHERE jobs.state IN ('unknown', 'abandoned') "
                "ORDER BY jobs.id"
            ).fetchall()
        return tuple(Orphan(entry_id=r[0], label=r[1], job_uid=r[2], why=r[3]) for r in rows)

    def job_counts(self) -> dict[str, int]:
        """Job attempts by state (``creating``, ``created``, ``started`` ...), for reports."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: count for state, count in rows}
