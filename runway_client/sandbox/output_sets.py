"""Output sets: what a successful run leaves behind (CONTRACT.md "Output sets").

A set names its job and the files the run wrote; each file is a storage object under the
key ``output-sets/<set uid>/<file name>``, downloadable through a presigned GET. The store
is thread-safe and hands out frozen snapshots; it also remembers the exact deadline of
every download link it signed (``X-Amz-Expires`` only has whole seconds).

>>> from datetime import datetime, UTC
>>> iso_millis(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
'2026-01-02T03:04:05.678Z'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

OUTPUT_PREFIX: Final = "output-sets"


@dataclass(frozen=True, slots=True)
class SandboxOutputSet:
    """One output set, as ``GET /output-sets`` lists it.

    ``files``: output file names in listing order; ``created_at``: aware UTC, whole
    milliseconds (what the API shows, so ``createdAfter=<a set's createdAt>`` excludes it).
    """

    uid: str
    job_uid: str
    partner: str
    tenant: str
    school_year: str
    bundle: str
    files: tuple[str, ...]
    sent_to_ods: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutputObject:
    """One stored output file: where it is on disk and how storage serves it.

    ``size``/``md5``: of the bytes on disk (gzip-compressed ones when ``content_encoding``
    is ``"gzip"``).
    """

    set_uid: str
    name: str
    path: Path
    size: int
    md5: str
    content_encoding: str | None
    created_at: datetime

    @property
    def object_key(self) -> str:
        """``output-sets/<set uid>/<file name>``."""
        return output_object_key(self.set_uid, self.name)


def output_object_key(set_uid: str, name: str) -> str:
    """The storage key of an output file.

    >>> output_object_key("u", "a.jsonl")
    'output-sets/u/a.jsonl'
    """
    return f"{OUTPUT_PREFIX}/{set_uid}/{name}"


def iso_millis(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, as JavaScript's ``toISOString``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def whole_millis(moment: datetime) -> datetime:
    """``moment`` with the microseconds below a millisecond dropped."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def to_json(output_set: SandboxOutputSet) -> dict[str, object]:
    """The set as the API lists it: exactly CONTRACT.md's fields."""
    return {
        "uid": output_set.uid,
        "files": list(output_set.files),
        "sentToOds": output_set.sent_to_ods,
        "createdAt": iso_millis(output_set.created_at),
        "jobUid": output_set.job_uid,
        "partner": output_set.partner,
        "tenant": output_set.tenant,
        "schoolYear": output_set.school_year,
        "bundle": output_set.bundle,
    }


class OutputSetStore:
    """Output sets by uid, their stored objects by key, and signed download-link deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, SandboxOutputSet] = {}
        self._objects: dict[str, OutputObject] = {}
        self._link_deadlines: dict[str, datetime] = {}

    def add(self, output_set: SandboxOutputSet, objects: Iterable[OutputObject]) -> None:
        """Record a set and its (already written) objects."""
        with self._lock:
            self._sets[output_set.uid] = output_set
            for stored in objects:
                self._objects[stored.object_key] = stored

    def all(self) -> tuple[SandboxOutputSet, ...]:
        """Every set, by ``created_at`` ascending (ties in recording order)."""
        with self._lock:
            sets = list(self._sets.values())
        return tuple(sorted(sets, key=lambda s: s.created_at))

    def get(self, uid: str) -> SandboxOutputSet | None:
        """The set ``uid``, or ``None``."""
        with self._lock:
            return self._sets.get(uid)

    def locate(self, object_key: str) -> OutputObject | None:
        """The output object stored under ``object_key``, or ``None``."""
        with self._lock:
            return self._objects.get(object_key)

    def remember_link(self, signature: str, deadline: datetime) -> None:
        """Note the exact deadline of the download link signed ``signature``."""
        with self._lock:
            self._link_deadlines[signature] = deadline

    def link_deadline(self, signature: str) -> datetime | None:
        """The exact deadline of a link this store was told about, or ``None``."""
        with self._lock:
            return self._link_deadlines.get(signature)
