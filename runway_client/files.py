"""Local files: the checks run before a job is created, and streaming upload bodies.

Before any request (ARCHITECTURE.md, "Validate before you create"), each
input file must exist, be a regular file (a symlink to one is fine), be
readable, and hold 1 byte to 5 GiB: S3 takes at most 5 GiB in one PUT and
Runway refuses a zero-byte file at start (CONTRACT.md, "Presigned S3 URLs" and
"POST /jobs/<uid>/start"). The name sent is the base name only.

``UploadBody`` streams a file in blocks, hashing (SHA-256) as it goes, so
memory stays flat whatever the file size; it refuses to send a file whose size
changed since it was checked.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

from returns.result import Failure, Result, Success

from runway_client.errors import InputError, RunwayError, Step
from runway_client.models import InputFile

__all__ = [
    "MAX_UPLOAD_BYTES",
    "UploadBody",
    "check_input_file",
    "check_input_files",
    "open_upload_body",
]

MAX_UPLOAD_BYTES: Final = 5 * 1024**3
"""S3's limit for one PUT (CONTRACT.md): 5 GiB."""

PathLike = str | os.PathLike[str]


def _problem(key: str, path: object, what: str) -> str:
    return f"input_files[{key!r}] = {str(path)!r}: {what}"


def check_input_file(key: object, path: object) -> Result[InputFile, RunwayError]:
    """Check one input file; ``Failure(InputError)`` names the key, the path and the fix.

    >>> check_input_file("INPUT_FILE", "/no/such/file.csv").failure().message
    "input_files['INPUT_FILE'] = '/no/such/file.csv': no such file; check the path"
    """
    problems = _file_problems(key, path)
    if isinstance(problems, InputFile):
        return Success(problems)
    return Failure(InputError.of(problems))


def check_input_files(input_files: object) -> Result[tuple[InputFile, ...], RunwayError]:
    """Check every file of ``input_files`` (file key -> local path), reporting all problems.

    Returns the files in the mapping's order.
    """
    if not isinstance(input_files, Mapping):
        return Failure(
            InputError.of(
                [
                    "input_files must be a mapping of file key to local path, "
                    f'e.g. {{"INPUT_FILE": "/path/to/file.csv"}}; got {type(input_files).__name__}'
                ]
            )
        )
    if not input_files:
        return Failure(InputError.of(["input_files is empty; give at least one file key and path"]))
    checked: list[InputFile] = []
    problems: list[str] = []
    for key, path in input_files.items():
        outcome = _file_problems(key, path)
        if isinstance(outcome, InputFile):
            checked.append(outcome)
        else:
            problems.extend(outcome)
    if problems:
        return Failure(InputError.of(problems))
    return Success(tuple(checked))


def _file_problems(key: object, path: object) -> InputFile | list[str]:
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        return [f"input_files key {key!r} must be a non-empty file key such as 'INPUT_FILE'"]
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        return [
            _problem(key, path, f"must be a str or os.PathLike path, got {type(path).__name__}")
        ]
    as_text = os.fspath(path)
    if not isinstance(as_text, str):
        return [_problem(key, path, "must be a text path, not bytes")]
    if not as_text.strip():
        return [_problem(key, path, "the path is empty")]
    name = Path(as_text).name
    if not name or not name.strip():
        return [_problem(key, path, "has no file name; give the path of a file")]
    try:
        info = os.stat(as_text)
    except FileNotFoundError:
        return [_problem(key, path, "no such file; check the path")]
    except PermissionError:
        return [_problem(key, path, "cannot be reached (permission denied on a folder)")]
    except OSError as exc:
        return [_problem(key, path, f"cannot be read ({exc.strerror})")]
    if stat.S_ISDIR(info.st_mode):
        return [_problem(key, path, "is a directory; give the path of a file")]
    if not stat.S_ISREG(info.st_mode):
        return [_problem(key, path, "is not a regular file (a pipe, socket or device?)")]
    if info.st_size == 0:
        return [_problem(key, path, "is empty (0 bytes); Runway refuses empty files")]
    if info.st_size > MAX_UPLOAD_BYTES:
        return [
            _problem(
                key,
                path,
                f"is {info.st_size} bytes, over S3's single-upload limit of "
                f"{MAX_UPLOAD_BYTES} bytes (5 GiB); split the file",
            )
        ]
    try:
        with open(as_text, "rb"):
            pass
    except PermissionError:
        return [_problem(key, path, "is not readable (permission denied)")]
    except OSError as exc:
        return [_problem(key, path, f"cannot be opened ({exc.strerror})")]
    return InputFile(key=key, path=as_text, name=name, size=info.st_size)


class UploadBody:
    """A file opened for upload: ``read`` streams exactly ``size`` bytes and hashes them.

    ``len(body)`` is the size checked before the job was created; ``read`` raises
    ``InputError`` if the file turns out shorter, and ``finish`` fails if it grew.
    Use as a context manager so the file is closed.

    SHA-256 runs on one helper thread, one block behind the block being sent
    (``hashlib`` and socket sends both release the GIL), so hashing overlaps the
    network instead of adding to it; at most two blocks are held at a time.
    """

    def __init__(self, file: BinaryIO, source: InputFile, *, step: Step = "upload") -> None:
        self._file = file
        self._source = source
        self._step: Step = step
        self._remaining = source.size
        self._sha256 = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runway-sha256")
        self._hashing: Future[None] | None = None

    def __len__(self) -> int:
        return self._source.size

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all remaining if negative); ``b""`` once ``len`` bytes are sent."""
        if self._remaining <= 0:
            return b""
        want = self._remaining if size < 0 else min(size, self._remaining)
        chunk = self._file.read(want)
        if not chunk:
            raise self._changed("it got shorter while being uploaded")
        self._remaining -= len(chunk)
        self._wait_for_hash()
        self._hashing = self._hasher.submit(self._sha256.update, chunk)
        return chunk

    def _wait_for_hash(self) -> None:
        if self._hashing is not None:
            self._hashing.result()
            self._hashing = None

    @property
    def bytes_sent(self) -> int:
        """Bytes handed out by ``read`` so far."""
        return self._source.size - self._remaining

    def finish(self) -> Result[str, RunwayError]:
        """After the upload: ``Success(sha256 hex)`` if exactly the checked bytes were sent."""
        self._wait_for_hash()
        if self._remaining:
            return Failure(self._changed("not all of it was sent"))
        if os.fstat(self._file.fileno()).st_size != self._source.size:
            return Failure(self._changed("it changed size while being uploaded"))
        return Success(self._sha256.hexdigest())

    def _changed(self, what: str) -> InputError:
        error = InputError(
            _problem(
                self._source.key,
                self._source.path,
                f"{what} (expected {self._source.size} bytes); do not change input files "
                "during a load",
            ),
            step=self._step,
        )
        return error

    def close(self) -> None:
        """Stop the hashing thread and close the file."""
        self._hasher.shutdown(wait=True, cancel_futures=True)
        self._file.close()

    def __enter__(self) -> UploadBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_upload_body(source: InputFile) -> Result[UploadBody, RunwayError]:
    """Open ``source`` for upload, refusing a file that changed size since it was checked."""
    try:
        file = open(source.path, "rb", buffering=0)  # noqa: SIM115 - closed by UploadBody
    except OSError as exc:
        return Failure(
            InputError(
                _problem(source.key, source.path, f"cannot be opened for upload ({exc.strerror})"),
                step="upload",
            )
        )
    size = os.fstat(file.fileno()).st_size
    if size != source.size:
        file.close()
        return Failure(
            InputError(
                _problem(
                    source.key,
                    source.path,
                    f"changed size since it was checked ({source.size} -> {size} bytes); "
                    "do not change input files during a load",
                ),
                step="upload",
            )
        )
    return Success(UploadBody(file, source))
