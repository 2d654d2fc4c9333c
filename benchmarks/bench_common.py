"""Helpers shared by the benchmarks (``upload_vs_curl.py``, ``download_vs_curl.py``).

- ``write_test_file``: a file of random bytes, written and hashed in 8 MiB chunks.
- ``run_measured``: run a command; its wall time and peak RSS.
- ``time_sha256``: the SHA-256 floor (hashing a file alone, in 1 MiB blocks).
- ``find_curl``, ``mib_s``, ``check`` / ``BenchmarkError``.
- The command line (``parse_args``), the setup line (``write_test_files``), the
  alternating runs (``Run``, ``alternate``) and the report (``print_report``,
  ``print_profile``) both benchmarks print.

Peak RSS comes from GNU ``/usr/bin/time -f %M`` when present: a child spawned
straight from a Python process inherits that process's RSS in its
``ru_maxrss`` (Linux keeps the larger of the pre-exec and post-exec peaks), so
``os.wait4``'s figure would be an upper bound, not the child's own peak. Without
``/usr/bin/time`` the wait4 figure is returned and callers say so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

MIB: Final = 1024 * 1024
WRITE_CHUNK: Final = 8 * MIB
GNU_TIME: Final = "/usr/bin/time"
HAVE_GNU_TIME: Final = os.access(GNU_TIME, os.X_OK)
RSS_SOURCE: Final = "/usr/bin/time -f %M" if HAVE_GNU_TIME else "os.wait4"
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


def run_benchmark(program: str, body: Callable[[str, Path], None]) -> int:
    """``body(curl, scratch)`` in a temporary directory; the benchmark's exit status.

    2 (said on stderr) if curl is missing, 1 (said on stderr) if ``body`` raises
    ``BenchmarkError``, else 0.
    """
    curl = find_curl()
    if curl is None:
        print(
            f"{program}: curl not found (looked for /usr/bin/curl and on PATH); "
            "install curl (e.g. apt-get install curl) to compare against it",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="runway-bench-") as temp:
        try:
            body(curl, Path(temp))
        except BenchmarkError as error:
            print(f"{program}: FAILED: {error}", file=sys.stderr)
            return 1
    return 0


# ----------------------------------------------------------------------------- the command line


def parse_args(
    argv: Sequence[str] | None,
    description: str,
    noun: str,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--size-mib``, ``--repeat``, (``more``'s options), ``--small-mib``, ``--profile``.

    ``noun`` is what one run does (``"uploads"``, ``"downloads"``) for the help texts.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help=f"{noun} per tool (default 3)")
    if more is not None:
        more(parser)
    parser.add_argument(
        "--small-mib", type=int, default=16, help="small file for the flat-memory check"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"profile one client {noun.removesuffix('s')} even if the ratio is under "
        f"{RATIO_TO_PROFILE}",
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.small_mib < 1 or args.repeat < 1:
        parser.error("--size-mib, --small-mib and --repeat must be at least 1")
    return args


def write_test_files(
    big: Path, small: Path, size_mib: int, small_mib: int, *notes: str
) -> tuple[TestFile, TestFile]:
    """Write the big and the small test file; print how long it took, then ``notes``."""
    began = time.perf_counter()
    written = write_test_file(big, size_mib), write_test_file(small, small_mib)
    print(
        "; ".join(
            (
                f"wrote {size_mib} MiB + {small_mib} MiB of random bytes in "
                f"{time.perf_counter() - began:.1f} s",
                *notes,
            )
        ),
        flush=True,
    )
    return written


# ----------------------------------------------------------------------------- runs


Tool = Literal["client", "curl"]


@dataclass(frozen=True, slots=True)
class Run:
    """One transfer by one tool, measured and checked."""

    tool: Tool
    size: int
    wall_seconds: float
    transfer_seconds: float
    peak_rss_kib: int
    checked: str
    fsync_seconds: float | None = None
    """curl downloads only: how long ``fsync`` of its file took afterwards."""


def alternate(repeat: int, client: Callable[[int], Run], curl: Callable[[int], Run]) -> list[Run]:
    """Run ``client(i)`` then ``curl(i)`` for i = 1..repeat, printing each run."""
    runs: list[Run] = []
    for i in range(1, repeat + 1):
        for run in (client(i), curl(i)):
            runs.append(run)
            synced = (
                f", then fsync {run.fsync_seconds:.3f} s" if run.fsync_seconds is not None else ""
            )
            print(
                f"  {run.tool:6} #{i}: wall {run.wall_seconds:7.3f} s, "
                f"xfer {run.transfer_seconds:7.3f} s, "
                f"peak RSS {run.peak_rss_kib / 1024:6.1f} MiB{synced}; {run.checked}",
                flush=True,
            )
    return runs


# ----------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Wording:
    """What the report calls things in one benchmark."""

    setting: str
    """First words of the summary line, e.g. ``target=sink``."""
    call: str
    """The library call the client times, e.g. ``upload_file``."""
    xfer: str
    """What the client's ``xfer s`` column is, e.g. ``the upload call``."""
    hashing: str
    """What the client does while it hashes, e.g. ``sends``."""
    noun: str
    """Plural of one run, e.g. ``uploads``."""


def print_report(
    wording: Wording,
    big: TestFile,
    runs: Sequence[Run],
    small_client: Run,
    small_curl: Run,
    notes: Sequence[str] = (),
) -> float:
    """Print the table (then ``notes``); returns the client/curl ratio of median wall times."""
    hash_seconds = time_sha256(big.path)
    rss_note = "" if HAVE_GNU_TIME else " (wait4 upper bound: includes the parent's RSS)"
    print()
    print(
        f"{wording.setting} file={big.size // MIB} MiB "
        f"repeats={sum(r.tool == 'curl' for r in runs)} "
        f"cpus={os.cpu_count()} python={sys.version.split()[0]}"
    )
    print(
        f"{'':8}{'wall s':>9}{'MiB/s':>9}{'xfer s':>9}{'MiB/s':>9}{'peak RSS MiB':>14}"
        f"   (medians; wall = whole process, xfer = {wording.xfer} / curl time_total)"
    )
    medians: dict[str, tuple[float, float, float]] = {}
    for tool in ("client", "curl"):
        mine = [r for r in runs if r.tool == tool]
        wall = statistics.median(r.wall_seconds for r in mine)
        xfer = statistics.median(r.transfer_seconds for r in mine)
        rss = max(r.peak_rss_kib for r in mine) / 1024
        medians[tool] = (wall, xfer, rss)
        print(
            f"{tool:8}{wall:9.3f}{mib_s(big.size, wall):9.1f}{xfer:9.3f}"
            f"{mib_s(big.size, xfer):9.1f}{rss:14.1f}"
        )
    wall_ratio = medians["client"][0] / medians["curl"][0]
    xfer_ratio = medians["client"][1] / medians["curl"][1]
    print(
        f"ratio client/curl: wall {wall_ratio:.2f}x, transfer only {xfer_ratio:.2f}x "
        f"(1.00 = as fast as curl; higher = slower)"
    )
    big_rss = medians["client"][2]
    small_rss = small_client.peak_rss_kib / 1024
    print(
        f"client peak RSS{rss_note}: {big_rss:.1f} MiB for {big.size // MIB} MiB vs "
        f"{small_rss:.1f} MiB for {small_client.size // MIB} MiB "
        f"(curl: {medians['curl'][2]:.1f} vs {small_curl.peak_rss_kib / 1024:.1f} MiB)"
    )
    growth = big_rss - small_rss
    if growth <= FLAT_RSS_TOLERANCE_MIB:
        print(
            f"memory does not grow with file size: {big.size // small_client.size}x the bytes, "
            f"{growth:+.1f} MiB of peak RSS"
        )
    else:
        print(
            f"WARNING: client peak RSS grew by {growth:.1f} MiB for "
            f"{big.size // small_client.size}x the bytes: memory is not flat"
        )
    print(
        f"floor: SHA-256 of the file alone takes {hash_seconds:.3f} s here "
        f"({mib_s(big.size, hash_seconds):.0f} MiB/s); the client hashes while it "
        f"{wording.hashing}, curl does not hash"
    )
    for note in notes:
        print(note)
    print(f"all {len(runs) + 2} {wording.noun} verified ({runs[-1].checked} for the last)")
    return wall_ratio


def profile_if_slow(
    ratio: float,
    always: bool,
    scratch: Path,
    wording: Wording,
    run_profiled: Callable[[Path], object],
    top: int = 15,
) -> None:
    """If ``always`` or ``ratio`` > 1.5: ``run_profiled(stats_path)``, print its top functions."""
    if not (always or ratio > RATIO_TO_PROFILE):
        return
    path = scratch / "client.prof"
    run_profiled(path)
    print()
    print(f"cProfile of one client {wording.call} call, top {top} by own time:")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
