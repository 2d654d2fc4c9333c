"""Download throughput and memory of the client library against ``curl -o``.

::

    .venv/bin/python benchmarks/download_vs_curl.py [--size-mib 1024] [--repeat 3]
        [--small-mib 16] [--profile]

Writes a file of random bytes (in chunks) to a temporary directory, serves it
from ``bench_source.py`` on 127.0.0.1 (a stdlib HTTP/1.1 server answering GET
with ``Content-Length`` and the body sent by ``sendfile``), then downloads it
``--repeat`` times with each of:

- the client: a subprocess (``bench_download_client.py``) calling
  ``runway_client._steps.download_file(RequestsTransport(...),
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
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench_common import (
    RSS_SOURCE,
    Run,
    TestFile,
    Wording,
    alternate,
    check,
    parse_args,
    print_report,
    profile_if_slow,
    run_benchmark,
    run_measured,
    sha256_of,
    write_test_files,
)
from bench_source import Source

HERE: Final = Path(__file__).resolve().parent
CLIENT_SCRIPT: Final = HERE / "bench_download_client.py"


@dataclass(frozen=True, slots=True)
class Served:
    """A test file as the source serves it."""

    file: TestFile
    name: str
    url: str


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


def fsync_notes(runs: Sequence[Run]) -> list[str]:
    """The report's ``fsync:`` line, if any curl run was fsynced afterwards."""
    synced = [r.fsync_seconds for r in runs if r.fsync_seconds is not None]
    if not synced:
        return []
    return [
        f"fsync: the client fsyncs before renaming into place (inside its times), curl does "
        f"not; fsync of curl's file afterwards took {statistics.median(synced):.3f} s (median)"
    ]


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


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(
        argv, "Download throughput and peak RSS of runway_client against curl -o.", "downloads"
    )
    return run_benchmark("download_vs_curl", lambda curl, scratch: compare(args, curl, scratch))


def compare(args: argparse.Namespace, curl: str, scratch: Path) -> None:
    """Write and serve the files, download them with both tools, print the report."""
    files, dest = scratch / "files", scratch / "dest"
    files.mkdir()
    dest.mkdir()
    big, small = write_test_files(
        files / "big.bin",
        files / "small.bin",
        args.size_mib,
        args.small_mib,
        f"curl {curl}",
        f"peak RSS via {RSS_SOURCE}",
        f"downloads go to {dest}",
    )
    with Source() as source:
        big_served = Served(big, big.path.name, source.add(big.path.name, big.path))
        small_served = Served(small, small.path.name, source.add(small.path.name, small.path))
        # The small runs come first: they also warm up both tools.
        small_client = run_client(source, small_served, dest, scratch)
        small_curl = run_curl(curl, source, small_served, dest, scratch)
        runs = alternate(
            args.repeat,
            lambda _: run_client(source, big_served, dest, scratch),
            lambda _: run_curl(curl, source, big_served, dest, scratch),
        )
        wording = Wording(
            setting="source=bench_source (sendfile)",
            call="download_file",
            xfer="the download_file call",
            hashing="receives",
            noun="downloads",
        )
        ratio = print_report(wording, big, runs, small_client, small_curl, fsync_notes(runs))
        profile_if_slow(
            ratio,
            args.profile,
            scratch,
            wording,
            lambda out: run_client(source, big_served, dest, scratch, out),
        )


if __name__ == "__main__":
    sys.exit(main())
