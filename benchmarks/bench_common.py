"""Helpers shared by the benchmarks (``upload_vs_curl.py``, ``download_vs_curl.py``).

- ``write_test_file``: a file of random bytes, written and hashed in 8 MiB chunks.
- ``run_measured``: run a command; its wall time and peak RSS.
- ``time_sha256``: the SHA-256 floor (hashing a file alone, in 1 MiB blocks).
- ``find_curl``, ``mib_s``, ``check`` / ``BenchmarkError``.

Peak RSS comes from GNU ``/usr/bin/time -f %M`` when present: a child spawned
straight from a Python process inherits that process's RSS in its
``ru_maxrss`` (Linux keeps the larger of the pre-exec and post-exec peaks), so
``os.wait4``'s figure would be an upper bound, not the child's own peak. Without
``/usr/bin/time`` the wait4 figure is returned and callers say so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MIB: Final = 1024 * 1024
WRITE_CHUNK: Final = 8 * MIB
GNU_TIME: Final = "/usr/bin/time"
HAVE_GNU_TIME: Final = os.access(GNU_TIME, os.X_OK)
RATIO_TO_PROFILE: Final = 1.5
FLAT_RSS_TOLERANCE_MIB: Final = 8.0


class BenchmarkError(Exception):
    """A transfer or a correctness check failed."""


def check(condition: bool, message: str) -> None:
    """Raise ``BenchmarkError(message)`` unless ``condition`` (works under ``python -O``)."""
    if not condition:
        raise BenchmarkError(message)


# ----------------------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class TestFile:
    path: Path
    size: int
    sha256: str


def write_test_file(path: Path, size_mib: int) -> TestFile:
    """Write ``size_mib`` MiB of random bytes to ``path`` in 8 MiB chunks, hashing them."""
    digest = hashlib.sha256()
    remaining = size_mib * MIB
    with open(path, "wb") as out:
        while remaining > 0:
            chunk = os.urandom(min(WRITE_CHUNK, remaining))
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    return TestFile(path=path, size=size_mib * MIB, sha256=digest.hexdigest())


def sha256_of(path: Path, block: int = WRITE_CHUNK) -> str:
    """Hex SHA-256 of the file at ``path``, read ``block`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(block):
            digest.update(data)
    return digest.hexdigest()


def time_sha256(path: Path) -> float:
    """Seconds to SHA-256 ``path`` in 1 MiB blocks in this process (the hashing floor)."""
    began = time.perf_counter()
    sha256_of(path, MIB)
    return time.perf_counter() - began


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class Finished:
    wall_seconds: float
    peak_rss_kib: int
    stdout: str
    stderr: str
    returncode: int


def run_measured(command: Sequence[str], scratch: Path) -> Finished:
    """Run ``command``; its wall time and peak RSS (KiB) (see the module docstring)."""
    rss_file = scratch / "rss.txt"
    rss_file.unlink(missing_ok=True)
    timed = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *command] if HAVE_GNU_TIME else command
    with (
        open(scratch / "stdout.txt", "w+b") as out,
        open(scratch / "stderr.txt", "w+b") as err,
    ):
        began = time.perf_counter()
        process = subprocess.Popen(timed, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    peak = usage.ru_maxrss
    if HAVE_GNU_TIME and rss_file.exists():
        lines = rss_file.read_text().split()
        if lines and lines[-1].isdigit():
            peak = int(lines[-1])
    return Finished(wall, peak, stdout, stderr, process.returncode)


def find_curl() -> str | None:
    if os.access("/usr/bin/curl", os.X_OK):
        return "/usr/bin/curl"
    return shutil.which("curl")


def mib_s(size: int, seconds: float) -> float:
    """``size`` bytes over ``seconds``, in MiB/s."""
    return size / MIB / seconds if seconds > 0 else float("inf")
