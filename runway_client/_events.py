"""Progress as a stream of plain values: what the flows tell an ``on_progress`` callback.

The steps and flows emit these frozen structs; they never draw anything. The
command line turns them into bars on a terminal or, with ``--progress json``,
into one JSON object per line (``encode_event``); a library user may do
anything with them (log them, feed a dashboard, count bytes).

=================  ======================================================  =========
event              when                                                     how often
=================  ======================================================  =========
``JobCreated``     ``POST /jobs`` answered: the job exists (its uid)        once
``FileProgress``   bytes of one file handed to the network                  per block
``FileUploaded``   one file's PUT answered 200 (bytes, seconds)             per file
``JobStarted``     ``POST /jobs/<uid>/start`` accepted                      once
``StillWaiting``   waiting for the run's output set (a heartbeat)           per look
``LoadFailed``     the load ended in an error (its kind, the job if any)    once
=================  ======================================================  =========

``FileProgress`` comes once per upload block (1 MiB), from the thread that
uploads the file: with parallel uploads the callback is called from several
threads at once, so it must be thread-safe, and quick (it runs between two
blocks of an upload). Whoever shows it throttles it (the CLI's JSON lines come
at most once a second per file). A callback must not raise: an exception
from it ends the upload like any other failure.

>>> encode_event(JobStarted(job_uid="0b6a", at=0.0))
b'{"event":"job_started","jobUid":"0b6a","startedEarlier":false,"at":0.0}'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeAlias

import msgspec

__all__ = [
    "FileProgress",
    "FileUploaded",
    "JobCreated",
    "JobStarted",
    "LoadFailed",
    "OnProgress",
    "ProgressEvent",
    "StillWaiting",
    "encode_event",
]


class _Event(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="event",
    rename="camel",
    omit_defaults=False,
):
    """Base of the events: ``at`` is when it happened (seconds since the epoch)."""


class JobCreated(_Event, frozen=True, kw_only=True, tag="job_created"):
    """The job exists: ``files`` maps each file key to its size in bytes."""

    job_uid: str
    tenant: str
    bundle: str
    files: dict[str, int]
    total_bytes: int
    at: float = msgspec.field(default_factory=time.time)


class FileProgress(_Event, frozen=True, kw_only=True, tag="file_progress"):
    """``sent`` of ``total`` bytes of file ``key`` handed to the network so far (a
    retried upload starts again from 0)."""

    job_uid: str
    key: str
    file_name: str
    sent: int
    total: int
    at: float = msgspec.field(default_factory=time.time)


class FileUploaded(_Event, frozen=True, kw_only=True, tag="file_uploaded"):
    """File ``key`` is stored (its PUT answered 200): ``bytes`` in ``seconds``."""

    job_uid: str
    key: str
    file_name: str
    bytes: int
    seconds: float
    at: float = msgspec.field(default_factory=time.time)


class JobStarted(_Event, frozen=True, kw_only=True, tag="job_started"):
    """Runway accepted the start: the run is under way (``started_earlier``: an earlier
    start of ours got through, and nothing was started now)."""

    job_uid: str
    started_earlier: bool = False
    at: float = msgspec.field(default_factory=time.time)


class StillWaiting(_Event, frozen=True, kw_only=True, tag="still_waiting"):
    """A heartbeat while waiting for job ``job_uid``'s output set: ``waited`` of
    ``timeout`` seconds so far."""

    job_uid: str
    waited: float
    timeout: float
    at: float = msgspec.field(default_factory=time.time)


class LoadFailed(_Event, frozen=True, kw_only=True, tag="load_failed"):
    """The load ended in an error of ``kind`` (``RunwayError.kind``) at ``step``;
    ``job_uid`` is set when a job exists, ``resumable`` when it can be resumed."""

    job_uid: str | None
    kind: str
    step: str
    message: str
    resumable: bool = False
    at: float = msgspec.field(default_factory=time.time)


ProgressEvent: TypeAlias = (
    JobCreated | FileProgress | FileUploaded | JobStarted | StillWaiting | LoadFailed
)
"""Any progress event (a tagged union: the JSON field ``event`` names the kind)."""

OnProgress: TypeAlias = Callable[[ProgressEvent], None]
"""The callback flows and steps take as ``on_progress``."""

_ENCODER = msgspec.json.Encoder()


def encode_event(event: ProgressEvent) -> bytes:
    """``event`` as one line of JSON (no newline), its kind in the field ``event``."""
    return _ENCODER.encode(event)
