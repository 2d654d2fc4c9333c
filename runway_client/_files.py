"""Local files: checks before a job is created, streaming upload bodies, safe downloads.

Before any request (ARCHITECTURE.md, "Validate before you create"), each
input file must exist, be a regular file (a symlink to one is fine), be
readable, and hold 1 byte to 5 GiB: S3 takes at most 5 GiB in one PUT and
Runway refuses a zero-byte file at start (CONTRACT.md, "Presigned S3 URLs" and
"POST /jobs/<uid>/start"). The name sent is the base name only.

``UploadBody`` is a file opened for upload: the transport sends it straight
from its descriptor while a ``FileHasher`` thread hashes it (SHA-256, and MD5
for ``verify_etag``) with reads of its own, so memory stays flat whatever the
file size; it refuses a file whose size or content changed since it was checked.

``DownloadFile`` writes an output file to a temporary name beside the final one
and renames it into place only when complete; ``FollowingSha256`` hashes what it
wrote, reading it back on its own thread.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

import msgspec
from returns.result import Failure, Result, Success

from runway_client._errors import InputChangedError, InputError, RunwayError, Step
from runway_client._models import InputFile, is_unicode_text

__all__ = [
    "HASH_BLOCK_BYTES",
    "MAX_UPLOAD_BYTES",
    "Digests",
    "DownloadFile",
    "FileHasher",
    "HashAhead",
    "UploadBody",
    "check_destination",
    "check_input_file",
    "check_input_files",
    "existing_file",
    "file_size",
    "fingerprint",
    "open_upload_body",
    "output_file_name",
    "path_exists",
    "prepare_destination",
    "read_small",
    "remove_stale_parts",
    "same_as_when_created",
    "write_private",
    "write_replacing",
]

MAX_UPLOAD_BYTES: Final = 5 * 1024**3
"""S3's limit for one PUT (CONTRACT.md): 5 GiB."""

PathLike = str | os.PathLike[str]


def _problem(key: str, path: object, what: str) -> str:
    return f"input_files[{key!r}] = {str(path)!r}: {what}"


def path_exists(path: str) -> bool:
    """True if ``path`` names an existing file or folder (a CA bundle, say)."""
    return os.path.exists(path)


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
    if "\x00" in as_text:
        return [_problem(key, path, "contains a NUL character")]
    name = Path(as_text).name
    if not name or not name.strip():
        return [_problem(key, path, "has no file name; give the path of a file")]
    if name != name.strip():
        return [
            _problem(
                key,
                path,
                "the file name has surrounding whitespace, which Runway trims; rename the file",
            )
        ]
    if not name.isprintable() or not is_unicode_text(name):
        return [
            _problem(
                key,
                path,
                "the file name has control characters or bytes that are not UTF-8 text; "
                "rename the file",
            )
        ]
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
    return InputFile(
        key=key,
        path=os.path.abspath(as_text),  # a resume from another folder reads the same file
        name=name,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
    )


def _sha256_of(path: str) -> str | None:
    """Hex SHA-256 of the file at ``path``, or ``None`` if it cannot be read."""
    try:
        with open(path, "rb", buffering=0) as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except (OSError, ValueError):
        return None


def fingerprint(source: InputFile) -> InputFile:
    """``source`` with its contents' SHA-256 recorded, for a resume file, if the file is
    still as it was checked when the job was created (same size and mtime); else
    ``source`` as it is, and a resume will find that it changed."""
    if source.sha256:
        return source
    try:
        info = os.stat(source.path)
    except (OSError, ValueError):
        return source
    if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
        return source
    digest = _sha256_of(source.path)
    return msgspec.structs.replace(source, sha256=digest) if digest else source


def same_as_when_created(source: InputFile) -> Result[InputFile, RunwayError]:
    """``Success(source)`` if the file at ``source.path`` is still the one the job was
    created with: same size, and the same SHA-256 (or, when none was recorded, the
    same mtime). Else ``InputChangedError`` naming the file: resuming would upload
    other bytes than the job was made for."""
    try:
        info = os.stat(source.path)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        return Failure(_changed(source, f"cannot be read any more ({why})"))
    if info.st_size != source.size:
        return Failure(
            _changed(source, f"is {info.st_size} bytes; the job was created with {source.size}")
        )
    if source.sha256:
        if _sha256_of(source.path) != source.sha256:
            return Failure(_changed(source, "has other contents than when the job was created"))
    elif source.mtime_ns and info.st_mtime_ns != source.mtime_ns:
        return Failure(_changed(source, "was modified after the job was created"))
    return Success(source)


def _changed(source: InputFile, what: str) -> InputChangedError:
    return InputChangedError(
        _problem(
            source.key,
            source.path,
            f"{what}; the job is not started with it: put the "
            "original file back and resume, or load again to make a new job",
        ),
        step="upload",
    )


HASH_BLOCK_BYTES: Final = 1024 * 1024
"""Bytes a ``FileHasher`` reads (``pread``) and hashes at a time."""


class Digests(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``FileHasher`` computed: hex digests, ``None`` for one not asked for."""

    sha256: str | None = None
    md5: str | None = None


class FileHasher:
    """Hashes bytes ``[0, size)`` of an open file on long-lived threads, one per digest.

    Each thread reads the file itself with ``pread`` (its own offsets; the
    caller's file position is untouched) in ``HASH_BLOCK_BYTES`` blocks into
    one reused buffer, straight off the page cache, so hashing runs beside the
    sender instead of waiting on it: no hand-off per block, no copies of the
    sent bytes. SHA-256 and MD5 on threads of their own take as long as the
    slower of the two on two cores, not their sum. ``result`` waits for them.
    A file shorter than ``size`` is an ``OSError`` from ``result``; ``stop``
    abandons the work.

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     _ = f.write(b"abc"); f.flush()
    ...     FileHasher(f.fileno(), 3, sha256=True).result().sha256[:16]
    'ba7816bf8f01cfea'
    """

    def __init__(self, descriptor: int, size: int, *, sha256: bool, md5: bool = False) -> None:
        self._descriptor = descriptor
        self._size = size
        self._sha256 = hashlib.sha256() if sha256 else None
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._stop = threading.Event()
        self._error: OSError | None = None
        self._threads = [
            threading.Thread(target=self._run, args=(digest,), name="runway-hash", daemon=True)
            for digest in (self._sha256, self._md5)
            if digest is not None
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, digest: hashlib._Hash) -> None:
        buffer = bytearray(min(HASH_BLOCK_BYTES, max(self._size, 1)))
        view = memoryview(buffer)
        offset = 0
        try:
            while offset < self._size and not self._stop.is_set():
                want = min(len(buffer), self._size - offset)
                got = os.preadv(self._descriptor, [view[:want]], offset)
                if got <= 0:
                    raise OSError(f"the file ended after {offset} of {self._size} bytes")
                digest.update(view[:got])  # releases the GIL for large blocks
                offset += got
        except OSError as exc:
            self._error = exc
        finally:
            view.release()

    def result(self) -> Digests:
        """Wait for the hashes; raises the ``OSError`` that stopped a thread, if any."""
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error
        if self._stop.is_set():
            raise OSError("hashing was stopped")
        return Digests(
            sha256=None if self._sha256 is None else self._sha256.hexdigest(),
            md5=None if self._md5 is None else self._md5.hexdigest(),
        )

    def stop(self) -> None:
        """Abandon the hashing and wait for the threads (idempotent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()


class HashAhead:
    """The digests of a job's files, begun before the job exists.

    A load's SHA-256 cannot take less time than one core needs to hash the file
    (about 0.65 s per GiB here), so it starts as soon as the files are checked:
    each of ``files`` is opened and a ``FileHasher`` begins on it while the
    token is fetched and the job created; the upload then adopts it
    (``adopt``) instead of hashing from byte 0 after the job exists. Only a
    hasher of the very same file is adopted: device, inode, size, modification
    and change times equal to those of the descriptor the upload opened, the
    identity ``UploadBody.finish`` checks again after the bytes are sent. A file
    that cannot be opened, or is not the size checked, is not hashed ahead (the
    upload reports it). A retried upload adopts the same finished hasher: its
    bytes are hashed once. ``close`` stops every hasher and closes their files.

    >>> import tempfile
    >>> from runway_client._models import InputFile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     _ = f.write(b"abc"); f.flush()
    ...     with HashAhead([InputFile(key="K", path=f.name, name="f", size=3)], sha256=True) as ahead:
    ...         ahead.adopt("K", _identity(os.stat(f.name))).result().sha256[:16]
    'ba7816bf8f01cfea'
    """

    def __init__(self, files: Sequence[InputFile], *, sha256: bool, md5: bool = False) -> None:
        self._begun: dict[str, tuple[tuple[int, int, int, int, int], FileHasher, int]] = {}
        if not (sha256 or md5):
            return
        for source in files:
            try:
                descriptor = os.open(source.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            except (OSError, ValueError):
                continue
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode) or info.st_size != source.size:
                os.close(descriptor)
                continue
            hasher = FileHasher(descriptor, source.size, sha256=sha256, md5=md5)
            self._begun[source.key] = (_identity(info), hasher, descriptor)

    def adopt(self, key: str, identity: tuple[int, int, int, int, int]) -> FileHasher | None:
        """The hasher begun on ``key``'s file if that file has ``identity`` (see
        ``_identity``), else ``None``. It stays this object's to stop."""
        begun = self._begun.get(key)
        if begun is None or begun[0] != identity:
            return None
        return begun[1]

    def close(self) -> None:
        """Stop the hashing and close the files (idempotent)."""
        begun, self._begun = self._begun, {}
        for _, hasher, descriptor in begun.values():
            hasher.stop()
            os.close(descriptor)

    def __enter__(self) -> HashAhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FollowingSha256:
    """SHA-256 of a file being written, on its own thread, following the writer.

    The writer appends and calls ``advance(n)``; the thread reads what is already
    written back with ``pread`` (off the page cache) and hashes it, never holding
    the writer up: no hand-off per block, it may lag and catch up. ``hexdigest``
    waits for it to reach the end. The descriptor must be open for reading.
    """

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._digest = hashlib.sha256()
        self._written = 0
        self._done = False
        self._stopped = False
        self._error: OSError | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="runway-sha256", daemon=True)
        self._thread.start()

    def advance(self, count: int, /) -> None:
        """``count`` more bytes were written at the end of the file."""
        with self._changed:
            self._written += count
            self._changed.notify()

    def _run(self) -> None:
        buffer = bytearray(HASH_BLOCK_BYTES)
        view = memoryview(buffer)
        offset = 0
        try:
            while True:
                with self._changed:
                    while offset >= self._written and not (self._done or self._stopped):
                        self._changed.wait()
                    if self._stopped or (self._done and offset >= self._written):
                        return
                    limit = self._written
                while offset < limit:
                    got = os.preadv(
                        self._descriptor, [view[: min(len(buffer), limit - offset)]], offset
                    )
                    if got <= 0:
                        raise OSError(f"the file ended after {offset} of {limit} bytes written")
                    self._digest.update(view[:got])
                    offset += got
        except OSError as exc:
            self._error = exc
        finally:
            view.release()

    def hexdigest(self) -> str:
        """Wait until every byte written is hashed; their hex digest."""
        with self._changed:
            self._done = True
            self._changed.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        with self._changed:
            self._stopped = True
            self._changed.notify()
        self._thread.join()


def _identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes when a file's content does: device, inode, size, mtime, ctime (ns)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class UploadBody:
    """A file opened for upload: exactly ``len(body)`` bytes, hashed on the side.

    ``len(body)`` is the size checked before the job was created. A transport
    sends the bytes one of two ways:

    - ``read(n)`` blocks (any transport): each block is counted as it is handed out;
    - straight from ``fileno()`` (``socket.sendfile`` or its own reads), telling
      the body each block's byte count through ``sent(n)``; a file that ends early
      is ``short(n)``'s error.

    With ``sha256`` (the receipt's checksum) and/or ``md5`` (to compare with S3's
    ``ETag``), a ``FileHasher`` thread reads the same open file (same inode) on its
    own, from byte 0, while the bytes go out; or, given ``ahead``, the hasher it
    began on the same file (same identity) before the job existed. It never sees the sent bytes, so
    ``finish`` proves they are the same file's bytes another way: the file's
    identity (device, inode, size, modification and change times, in ns) must be
    what it was when opened. Any write, truncation or ``touch`` in between moves
    the modification time, so a file changed during the upload is refused (an
    ``InputError``) rather than sent with a checksum of other bytes. Limits: a
    write landing within the file system's timestamp granularity of the open
    (the "racy" case git knows too) or through a shared memory map not yet
    written back can escape this check; ``verify_etag`` then still compares
    what S3 stored with what was hashed.

    Use as a context manager so the thread stops and the file is closed.
    """

    def __init__(
        self,
        file: BinaryIO,
        source: InputFile,
        *,
        step: Step = "upload",
        sha256: bool = True,
        md5: bool = False,
        ahead: HashAhead | None = None,
    ) -> None:
        self._file = file
        self._source = source
        self._step: Step = step
        self._remaining = source.size
        self._opened = _identity(os.fstat(file.fileno()))
        adopted = ahead.adopt(source.key, self._opened) if ahead is not None else None
        self._owns_hasher = adopted is None
        self._hasher = adopted or (
            FileHasher(file.fileno(), source.size, sha256=sha256, md5=md5)
            if sha256 or md5
            else None
        )

    def __len__(self) -> int:
        return self._source.size

    def fileno(self) -> int:
        """The open file's descriptor (bytes ``[0, len)`` are the body)."""
        return self._file.fileno()

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all remaining if negative); ``b""`` once ``len`` bytes are out."""
        if self._remaining <= 0:
            return b""
        want = self._remaining if size < 0 else min(size, self._remaining)
        chunk = self._file.read(want)
        if not chunk:
            raise self.short(self.bytes_sent)
        self._remaining -= len(chunk)
        return chunk

    def sent(self, count: int, /) -> None:
        """Count ``count`` more bytes as sent (by a transport sending from ``fileno``)."""
        self._remaining -= count

    def short(self, count: int, /) -> InputChangedError:
        """The error for a file that ended after ``count`` bytes."""
        return self._changed(f"it got shorter while being uploaded (ended after {count} bytes)")

    @property
    def bytes_sent(self) -> int:
        """Bytes sent (or handed out by ``read``) so far."""
        return self._source.size - self._remaining

    def finish(self) -> Result[Digests, RunwayError]:
        """After the upload: ``Success(Digests)`` if exactly the checked bytes of an
        unchanged file were sent (hashing to the SHA-256 recorded for the file when the
        job was created, if one was and it was computed); the digests not asked for are
        ``None``."""
        if self._remaining:
            return Failure(self._changed("not all of it was sent"))
        digests = Digests()
        if self._hasher is not None:
            try:
                digests = self._hasher.result()
            except OSError:
                return Failure(self._changed("it got shorter while being uploaded"))
        now = _identity(os.fstat(self._file.fileno()))
        if now[2] != self._source.size:
            return Failure(self._changed("it changed size while being uploaded"))
        if now != self._opened:
            return Failure(
                self._changed("it was modified (or its metadata changed) while being uploaded")
            )
        recorded = self._source.sha256
        if recorded and digests.sha256 is not None and digests.sha256 != recorded:
            return Failure(self._changed("its contents changed since the job was created"))
        return Success(digests)

    def _changed(self, what: str) -> InputChangedError:
        error = InputChangedError(
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
        """Stop the hashing thread (unless adopted from a ``HashAhead``) and close the file."""
        if self._hasher is not None and self._owns_hasher:
            self._hasher.stop()
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


def open_upload_body(
    source: InputFile,
    *,
    sha256: bool = True,
    md5: bool = False,
    ahead: HashAhead | None = None,
) -> Result[UploadBody, RunwayError]:
    """Open ``source`` for upload, refusing a file that changed size since it was checked.

    ``sha256``/``md5``: which digests ``UploadBody.finish`` returns; ``ahead``: where
    their hashing may have begun already (see ``UploadBody``).
    """
    try:
        # O_NONBLOCK: if a pipe took the file's place since the check, open must not hang.
        descriptor = os.open(source.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        return Failure(
            InputChangedError(
                _problem(source.key, source.path, f"cannot be opened for upload ({why})"),
                step="upload",
            )
        )
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        return Failure(
            InputChangedError(
                _problem(source.key, source.path, "is no longer a regular file"), step="upload"
            )
        )
    os.set_blocking(descriptor, True)
    file = os.fdopen(descriptor, "rb", buffering=0)
    size = info.st_size
    if size != source.size:
        file.close()
        return Failure(
            InputChangedError(
                _problem(
                    source.key,
                    source.path,
                    f"changed size since it was checked ({source.size} -> {size} bytes); "
                    "do not change input files during a load",
                ),
                step="upload",
            )
        )
    return Success(UploadBody(file, source, sha256=sha256, md5=md5, ahead=ahead))


def output_file_name(name: object) -> Result[str, RunwayError]:
    """Check a file name the server gave before it becomes a local path.

    Only a plain base name is accepted: no directory part, no ``..``, no NUL, so
    an output set can never write outside the destination folder.

    >>> output_file_name("../../etc/passwd").failure().message
    "the output file name '../../etc/passwd' is not a plain file name; refusing to write it"
    """
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or not name.isprintable()
        or len(name.encode("utf-8", "replace")) > 255
        or Path(name).name != name
    ):
        return Failure(
            InputError(
                f"the output file name {name!r} is not a plain file name; refusing to write it",
                step="download",
            )
        )
    return Success(name)


def prepare_destination(dest_dir: object) -> Result[Path, RunwayError]:
    """The destination folder, created if missing; an ``InputError`` if it cannot be."""
    if isinstance(dest_dir, bytes) or not isinstance(dest_dir, str | os.PathLike):
        return Failure(
            InputError.of(
                [f"dest_dir must be a str or os.PathLike path, got {type(dest_dir).__name__}"]
            )
        )
    folder = Path(os.fspath(dest_dir))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return Failure(InputError.of([f"dest_dir {str(folder)!r} exists and is not a directory"]))
    except OSError as exc:
        return Failure(
            InputError.of([f"dest_dir {str(folder)!r} cannot be created ({exc.strerror})"])
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return Failure(InputError.of([f"dest_dir {str(folder)!r} is not writable"]))
    return Success(folder)


def check_destination(dest_dir: object) -> Result[Path, RunwayError]:
    """Whether ``dest_dir`` could take downloads, without making anything: an existing
    writable folder, or a path whose nearest existing parent is one."""
    if isinstance(dest_dir, bytes) or not isinstance(dest_dir, str | os.PathLike):
        return Failure(
            InputError.of(
                [f"dest_dir must be a str or os.PathLike path, got {type(dest_dir).__name__}"]
            )
        )
    folder = Path(os.fspath(dest_dir))
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    try:
        probe.resolve(strict=True)
    except (OSError, RuntimeError):
        return Failure(
            InputError.of([f"dest_dir {str(folder)!r} runs into a broken or looping symlink"])
        )
    if probe == folder and not folder.is_dir():
        return Failure(InputError.of([f"dest_dir {str(folder)!r} exists and is not a directory"]))
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        return Failure(InputError.of([f"dest_dir {str(folder)!r} cannot be created or written"]))
    return Success(folder)


def existing_file(path: Path) -> tuple[int, str] | None:
    """``(bytes, sha256 hex)`` of a regular file at ``path``, or ``None`` if there is none."""
    try:
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb", buffering=0) as file:
            while block := file.read(_BLOCK):
                digest.update(block)
                size += len(block)
        return size, digest.hexdigest()
    except OSError:
        return None


def file_size(path: Path) -> int | None:
    """The size in bytes of a regular file at ``path``, or ``None``."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


_BLOCK: Final = 1024 * 1024
WRITE_BYTES: Final = 64 * 1024
"""Bytes per ``write(2)`` of a download into its file."""


class DownloadFile:
    """A download in progress into ``final``: a hidden temporary file beside it.

    ``begin`` (called with the answer's headers) decides. Without ``overwrite``, a
    file already at ``final`` is never replaced: when the answer's ``ETag`` is an
    MD5 (a single-part S3 object), the file is kept if its MD5 is that (``begin``
    returns ``False``, nothing is read: ``skipped``) and refused (``InputError``
    naming it) if not; without such an ETag the download goes to the temporary
    file and ``commit`` compares SHA-256s: the same bytes are kept (``skipped``),
    other bytes refused. Otherwise ``begin`` opens the temporary file (locked
    while open, so ``remove_stale_parts`` knows a live one); ``write`` appends and hashes; ``commit`` renames it into
    place (atomic on one file system), so the final name never holds a partial
    file; ``discard`` removes it. Leaving the context without ``commit`` discards.

    The SHA-256 is computed by a thread reading the written bytes back from the
    temporary file (``FollowingSha256``), so receiving and writing never wait
    for the hash; ``commit`` fsyncs while that thread finishes.
    """

    def __init__(self, final: Path, *, overwrite: bool = False) -> None:
        self.final = final
        self.overwrite = overwrite
        self.temp: Path | None = None
        self._file: BinaryIO | None = None
        self._sha256: FollowingSha256 | None = None
        self.bytes_written = 0
        self.skipped = False
        self._done = False
        self._compare_with: str | None = None  # sha256 of the file already there

    def begin(self, headers: Mapping[str, str], /) -> bool:
        """``False`` to skip (the same bytes are already there), else open the temporary
        file; ``InputError`` when other bytes are there and ``overwrite`` is false."""
        if os.path.isdir(self.final):
            raise InputError(
                f"{str(self.final)!r} is a directory where the output file "
                f"{self.final.name!r} should go; move it or choose another dest_dir",
                step="download",
            )
        if not self.overwrite and os.path.lexists(self.final):
            etag = headers.get("etag", "").strip().strip('"').lower()
            there = _digests_of(self.final)
            if there is None:
                raise self._differs()
            if _MD5_HEX.fullmatch(etag):  # a single-part object: its ETag is its MD5
                if there[1] != etag:
                    raise self._differs()
                self.skipped = True
                return False
            self._compare_with = there[0]  # decide on the bytes, once downloaded
        for _ in range(8):  # a name taken by another download: try another
            # short and fixed-length, so a final name near the 255-byte limit still fits
            temp = self.final.parent / f".runway-{secrets.token_hex(8)}.part"
            try:
                # 0o666 less the umask, as for any file the user makes (mkstemp gives 0600)
                # read too: the hashing thread reads the written bytes back (page cache)
                handle = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._cannot("create a file in", self.final.parent, exc) from None
            _lock_part(handle)
            self.temp = temp
            self._file = os.fdopen(handle, "wb", buffering=0)
            self._sha256 = FollowingSha256(handle)
            return True
        raise InputError(
            f"cannot create a temporary file in {str(self.final.parent)!r}", step="download"
        )

    def write(self, data: bytes, /) -> int:
        """Append ``data``; a full disk is an ``InputError`` naming the file."""
        if self._file is None:
            raise RuntimeError("DownloadFile.write before begin")
        try:
            with memoryview(data) as whole:
                view = whole
                while view:
                    # in pieces of WRITE_BYTES: larger write(2) calls into the page
                    # cache measured ~10x slower on small VMs (benchmarks/limits.py)
                    written = self._file.write(view[:WRITE_BYTES])
                    view = view[written or 0 :]
        except OSError as exc:
            raise self._cannot("write", self.temp or self.final, exc) from None
        if self._sha256 is not None:
            self._sha256.advance(len(data))
        self.bytes_written += len(data)
        return len(data)

    def commit(self) -> Result[str, RunwayError]:
        """Flush, then rename into place; ``Success(sha256 hex)``."""
        if self._file is None or self.temp is None or self._sha256 is None:
            return Failure(InputError("nothing was downloaded to commit", step="download"))
        try:
            self._file.flush()
            os.fsync(self._file.fileno())  # while the hashing thread finishes
            digest = self._sha256.hexdigest()
            if self._compare_with is not None:  # a file was there: never replaced
                self.discard()
                if digest != self._compare_with:
                    return Failure(self._differs())
                self.skipped = True
                return Success(digest)
            self._file.close()
            os.replace(self.temp, self.final)
        except OSError as exc:
            self.discard()
            return Failure(self._cannot("save", self.final, exc))
        self._done = True
        return Success(digest)

    def _differs(self) -> InputError:
        return InputError(
            f"{str(self.final)!r} already exists and is not the output set's "
            f"{self.final.name!r}; it was left as it is: pass overwrite=True "
            "(--overwrite) to replace it, or choose another dest_dir",
            step="download",
        )

    def discard(self) -> None:
        """Close and remove the temporary file (idempotent)."""
        if self._sha256 is not None:
            self._sha256.close()
        if self._file is not None:
            self._file.close()
        if not self._done and self.temp is not None:
            self.temp.unlink(missing_ok=True)
        self._done = True

    def _cannot(self, what: str, path: Path, exc: OSError) -> InputError:
        if exc.errno == errno.EISDIR or os.path.isdir(self.final):
            hint = f"{str(self.final)!r} is a directory: move it or choose another dest_dir"
        elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            hint = "free space or choose another dest_dir"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "check the folder's permissions or choose another dest_dir"
        else:
            hint = "choose another dest_dir"
        return InputError(f"cannot {what} {str(path)!r} ({exc.strerror}); {hint}", step="download")

    def __enter__(self) -> DownloadFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


_MD5_HEX: Final = re.compile(r"[0-9a-f]{32}")
_PART_NAME: Final = re.compile(r"\.runway-[0-9a-f]{16}\.part")
"""The name of a ``DownloadFile``'s temporary file, and nothing else's."""
STALE_PART_SECONDS: Final = 86400.0
"""Without file locks (Windows), a temporary download file untouched this long is stale."""


def _digests_of(path: Path) -> tuple[str, str] | None:
    """``(sha256 hex, md5 hex)`` of the regular file at ``path``, or ``None``."""
    try:
        if not path.is_file():
            return None
        sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with open(path, "rb", buffering=0) as file:
            while block := file.read(_BLOCK):
                sha256.update(block)
                md5.update(block)
    except OSError:
        return None
    return sha256.hexdigest(), md5.hexdigest()


def _lock_part(descriptor: int) -> None:
    """Hold an exclusive lock on a temporary download file while it is written (the
    kernel drops it when the process ends, ``kill -9`` too)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: age decides instead
        return
    with contextlib.suppress(OSError):
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_parts(folder: Path) -> int:
    """Remove the temporary files of downloads that died (``kill -9``) in ``folder``:
    only names of ``DownloadFile``'s own pattern (``.runway-<16 hex>.part``), only
    regular files (never through a symlink), only when no live download holds its
    lock (without locks: untouched for ``STALE_PART_SECONDS``). Returns how many."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        fcntl = None  # type: ignore[assignment]
    removed = 0
    try:
        names = [n for n in os.listdir(folder) if _PART_NAME.fullmatch(n)]
    except OSError:
        return 0
    for name in names:
        path = folder / name
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live download is writing it
            elif time.time() - info.st_mtime < STALE_PART_SECONDS:
                continue
            path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(descriptor)
    return removed


def write_private(path: Path, data: bytes) -> Result[Path, RunwayError]:
    """Write ``data`` to a new file only the owner can read (mode 0600).

    Used for a pending job, whose presigned URLs are secrets for an hour. An
    existing file is not overwritten.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
    except OSError as exc:
        return Failure(InputError.of([f"cannot write {str(path)!r} ({exc.strerror})"]))
    return Success(path)


def write_replacing(path: str | os.PathLike[str], data: bytes) -> Result[Path, RunwayError]:
    """Write ``data`` to ``path``, replacing what is there in one step (a temporary file
    beside it, renamed): a reader never sees half a file. For results files."""
    final = Path(os.fspath(path))
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        return Failure(InputError.of([f"cannot write {str(final)!r} ({exc.strerror})"]))
    return Success(final)


def read_small(path: object, *, limit: int = 16 * 1024 * 1024) -> Result[bytes, RunwayError]:
    """The bytes of a small local file (at most ``limit`` bytes), or an ``InputError``."""
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        return Failure(InputError.of([f"expected a file path, got {type(path).__name__}"]))
    try:
        info = os.stat(path)
    except OSError as exc:
        return Failure(InputError.of([f"cannot read {os.fspath(path)!r} ({exc.strerror})"]))
    if not stat.S_ISREG(info.st_mode):
        return Failure(InputError.of([f"{os.fspath(path)!r} is not a regular file"]))
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        return Failure(InputError.of([f"cannot read {os.fspath(path)!r} ({exc.strerror})"]))
    if len(data) > limit:
        return Failure(InputError.of([f"{os.fspath(path)!r} is larger than {limit} bytes"]))
    return Success(data)
