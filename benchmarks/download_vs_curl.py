"""Download throughput and memory of the client library against ``curl -o``.

::

    .venv/bin/python benchmarks/download_vs_curl.py [--size-mib 1024] [--repeat 3]
        [--small-mib 16] [--profile]

Writes a file of random bytes (in chunks) to a temporary directory, serves it
from ``bench_source.py`` on 127.0.0.1 (a stdlib HTTP/1.1 server answering GET
with ``Content-Length`` and the body sent by ``sendfile``), then downloads it
``--repeat`` times with each of:

- the client: a subprocess (``bench_download_client.py``) calling
  ``runway_client.steps.download_file(RequestsTransport(...),
  DownloadLinks(set_uid="bench", links={name: url}), name, dest_dir, overwrite=True)``;
- curl: ``curl -sS -o DEST URL`` (plus ``-w`` to read back its status, bytes
  received and transfer time),

alternating client and curl. Each subprocess's wall time and peak RSS are
measured (``bench_common.run_measured``: GNU ``/usr/bin/time -f %M``). The
client and curl are also run once on a ``--small-mib`` file first (a warm-up,
and the small-file peak RSS). Every download is checked: the source must have
sent the whole file once, the file on disk must have the source's size and
SHA-256, nothing else may be left in the destination folder (no ``.part``
file), and the client's receipt must give the same size and SHA-256. Each
download is deleted before the next.

The client ``fsync``s the file before renaming it into place; curl does not.
So after each curl run the script ``fsync``s curl's file itself (outside curl's
times) and reports how long that took, to show how much of the difference is
the disk.

Exit status: 0 on success, 1 if a download or a check fails, 2 if curl is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from bench_common import (
    FLAT_RSS_TOLERANCE_MIB,
    HAVE_GNU_TIME,
    MIB,
    RATIO_TO_PROFILE,
    BenchmarkError,
    TestFile,
    check,
    find_curl,
    mib_s,
    run_measured,
    sha256_of,
    time_sha256,
    write_test_file,
)
from bench_source import Source

HERE: Final = Path(__file__).resolve().parent
CLIENT_SCRIPT: Final = HERE / "bench_download_client.py"

Tool = Literal["client", "curl"]


@dataclass(frozen=True, slots=True)
class Served:
    """A test file as the source serves it."""

    file: TestFile
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Run:
    tool: Tool
    size: int
    wall_seconds: float
    transfer_seconds: float
    peak_rss_kib: int
    checked: str
    fsync_seconds: float | None = None
    """curl only: how long ``fsync`` of its file took afterwards (the client's own is inside)."""


# ----------------------------------------------------------------------------- checks


def verify_download(source: Source, served_before: int, served: Served, dest: Path) -> str:
    """Check the download of ``served`` into ``dest`` and delete it; what was checked."""
    records = source.records()[served_before:]
    check(
        len(records) == 1,
        f"{served.name}: the source answered {len(records)} requests, expected one GET",
    )
    check(
        records[0].status == 200 and records[0].sent == served.file.size,
        f"{served.name}: the source answered {records[0].status} and sent {records[0].sent} "
        f"of {served.file.size} bytes",
    )
    path = dest / served.name
    left = sorted(entry.name for entry in dest.iterdir())
    check(left == [served.name], f"{dest}: expected only {served.name!r}, found {left}")
    size = path.stat().st_size
    check(size == served.file.size, f"{path}: {size} bytes on disk, expected {served.file.size}")
    on_disk = sha256_of(path)
    check(
        on_disk == served.file.sha256,
        f"{path}: sha256 {on_disk} on disk, expected {served.file.sha256}",
    )
    path.unlink()
    return f"{size} bytes on disk, sha256 {on_disk[:12]}... matches"


def fsync_seconds(path: Path) -> float:
    """Seconds to ``fsync`` ``path`` (its dirty pages go to the disk)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        began = time.perf_counter()
        os.fsync(descriptor)
        return time.perf_counter() - began
    finally:
        os.close(descriptor)


# ----------------------------------------------------------------------------- runs


def run_client(
    source: Source,
    served: Served,
    dest: Path,
    scratch: Path,
    profile_out: Path | None = None,
) -> Run:
    before = len(source.records())
    command = [
        sys.executable,
        str(CLIENT_SCRIPT),
        "--url",
        served.url,
        "--name",
        served.name,
        "--dest",
        str(dest),
    ]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    done = run_measured(command, scratch)
    check(
        done.returncode == 0,
        f"client download of {served.name} exited {done.returncode}: {done.stderr.strip()}",
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    check(
        report["bytes"] == served.file.size and not report["skipped"],
        f"client receipt says {report['bytes']} bytes (skipped={report['skipped']}), "
        f"expected {served.file.size}",
    )
    check(
        report["sha256"] == served.file.sha256,
        f"client receipt sha256 {report['sha256']}, expected {served.file.sha256}",
    )
    check(
        Path(report["path"]) == dest / served.name,
        f"client receipt path {report['path']!r}, expected {str(dest / served.name)!r}",
    )
    checked = verify_download(source, before, served, dest) + ", receipt matches"
    return Run(
        "client",
        served.file.size,
        done.wall_seconds,
        float(report["download_seconds"]),
        done.peak_rss_kib,
        checked,
    )


def run_curl(curl: str, source: Source, served: Served, dest: Path, scratch: Path) -> Run:
    before = len(source.records())
    target = dest / served.name
    command = [
        curl, "-sS", "-o", str(target),
        "-w", "%{http_code} %{size_download} %{time_total}",
        served.url,
    ]  # fmt: skip
    done = run_measured(command, scratch)
    check(
        done.returncode == 0,
        f"curl download of {served.name} exited {done.returncode}: {done.stderr.strip()}",
    )
    http_code, size_download, time_total = done.stdout.split()
    check(http_code == "200", f"curl download of {served.name}: HTTP {http_code}")
    check(
        int(size_download) == served.file.size,
        f"curl download of {served.name}: received {size_download} bytes",
    )
    synced = fsync_seconds(target)
    checked = verify_download(source, before, served, dest)
    return Run(
        "curl",
        served.file.size,
        done.wall_seconds,
        float(time_total),
        done.peak_rss_kib,
        checked,
        synced,
    )


# ----------------------------------------------------------------------------- report


def print_report(
    big: TestFile,
    runs: list[Run],
    small_client: Run,
    small_curl: Run,
    hash_seconds: float,
) -> float:
    """Print the table; returns the client/curl ratio of median wall times."""
    rss_note = "" if HAVE_GNU_TIME else " (wait4 upper bound: includes the parent's RSS)"
    print()
    print(
        f"source=bench_source (sendfile) file={big.size // MIB} MiB "
        f"repeats={sum(r.tool == 'curl' for r in runs)} "
        f"cpus={os.cpu_count()} python={sys.version.split()[0]}"
    )
    print(
        f"{'':8}{'wall s':>9}{'MiB/s':>9}{'xfer s':>9}{'MiB/s':>9}{'peak RSS MiB':>14}"
        f"   (medians; wall = whole process, xfer = the download_file call / curl time_total)"
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
        f"({mib_s(big.size, hash_seconds):.0f} MiB/s); the client hashes while it receives, "
        "curl does not hash"
    )
    synced = [r.fsync_seconds for r in runs if r.fsync_seconds is not None]
    if synced:
        print(
            f"fsync: the client fsyncs before renaming into place (inside its times), curl does "
            f"not; fsync of curl's file afterwards took {statistics.median(synced):.3f} s (median)"
        )
    print(f"all {len(runs) + 2} downloads verified ({runs[-1].checked} for the last)")
    return wall_ratio


def print_profile(path: Path, top: int = 15) -> None:
    print()
    print(f"cProfile of one client download_file call, top {top} by own time:")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Download throughput and peak RSS of runway_client against curl -o."
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="downloads per tool (default 3)")
    parser.add_argument(
        "--small-mib", type=int, default=16, help="small file for the flat-memory check"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"profile one client download even if the ratio is under {RATIO_TO_PROFILE}",
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.small_mib < 1 or args.repeat < 1:
        parser.error("--size-mib, --small-mib and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    curl = find_curl()
    if curl is None:
        print(
            "download_vs_curl: curl not found (looked for /usr/bin/curl and on PATH); "
            "install curl (e.g. apt-get install curl) to compare against it",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="runway-bench-") as temp:
        scratch = Path(temp)
        files, dest = scratch / "files", scratch / "dest"
        files.mkdir()
        dest.mkdir()
        began = time.perf_counter()
        big = write_test_file(files / "big.bin", args.size_mib)
        small = write_test_file(files / "small.bin", args.small_mib)
        print(
            f"wrote {args.size_mib} MiB + {args.small_mib} MiB of random bytes in "
            f"{time.perf_counter() - began:.1f} s; curl {curl}; "
            f"peak RSS via {'/usr/bin/time -f %M' if HAVE_GNU_TIME else 'os.wait4'}; "
            f"downloads go to {dest}",
            flush=True,
        )
        try:
            with Source() as source:
                big_served = Served(big, big.path.name, source.add(big.path.name, big.path))
                small_served = Served(
                    small, small.path.name, source.add(small.path.name, small.path)
                )
                # The small runs come first: they also warm up both tools.
                small_client = run_client(source, small_served, dest, scratch)
                small_curl = run_curl(curl, source, small_served, dest, scratch)
                runs: list[Run] = []
                for i in range(1, args.repeat + 1):
                    for run in (
                        run_client(source, big_served, dest, scratch),
                        run_curl(curl, source, big_served, dest, scratch),
                    ):
                        runs.append(run)
                        synced = (
                            f", then fsync {run.fsync_seconds:.3f} s"
                            if run.fsync_seconds is not None
                            else ""
                        )
                        print(
                            f"  {run.tool:6} #{i}: wall {run.wall_seconds:7.3f} s, "
                            f"xfer {run.transfer_seconds:7.3f} s, "
                            f"peak RSS {run.peak_rss_kib / 1024:6.1f} MiB{synced}; {run.checked}",
                            flush=True,
                        )
                ratio = print_report(big, runs, small_client, small_curl, time_sha256(big.path))
                if args.profile or ratio > RATIO_TO_PROFILE:
                    profile_out = scratch / "client.prof"
                    run_client(source, big_served, dest, scratch, profile_out)
                    print_profile(profile_out)
        except BenchmarkError as error:
            print(f"download_vs_curl: FAILED: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
