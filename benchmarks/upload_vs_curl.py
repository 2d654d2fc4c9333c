"""Upload throughput and memory of the client library against ``curl -T``.

::

    .venv/bin/python benchmarks/upload_vs_curl.py [--size-mib 1024] [--repeat 3]
        [--target sink|sandbox] [--small-mib 16] [--profile]

Writes a file of random bytes (in chunks) to a temporary directory, starts an
upload target on 127.0.0.1 (``sink``: a stdlib server that reads and discards
the body; ``sandbox``: the sandbox's S3-like storage, which writes the object
to disk and hashes it), then uploads the file ``--repeat`` times with each of:

- the client: a subprocess (``bench_client.py``) calling
  ``runway_client.steps.upload_file(RequestsTransport(...), job, "INPUT_FILE")``;
- curl: ``curl -sS -o /dev/null -T FILE -H 'Content-Type: application/octet-stream' URL``
  (plus ``-w`` to read back its status, bytes sent and transfer time),

alternating client and curl. Each subprocess's wall time and peak RSS are
measured. The client is also run once on a ``--small-mib`` file to show its
peak RSS does not grow with the file. Every upload is checked: the sink must
have received exactly the file's bytes; the sandbox's stored object must have
the file's size and SHA-256 (the client's receipt SHA-256 for the client).

Peak RSS comes from GNU ``/usr/bin/time -f %M`` when present: a child spawned
straight from this Python process inherits this process's RSS in its
``ru_maxrss`` (Linux keeps the larger of the pre-exec and post-exec peaks), so
``os.wait4``'s figure would be an upper bound, not the child's own peak. Without
``/usr/bin/time`` the wait4 figure is shown and marked as such.

Exit status: 0 on success, 1 if an upload or a check fails, 2 if curl is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from bench_common import (
    FLAT_RSS_TOLERANCE_MIB,
    HAVE_GNU_TIME,
    MIB,
    RATIO_TO_PROFILE,
    BenchmarkError,
    TestFile,
    check,
    find_curl,
    run_measured,
    time_sha256,
    write_test_file,
)
from bench_common import mib_s as _mib_s
from bench_common import sha256_of as _sha256_of
from bench_sink import Sink

if TYPE_CHECKING:
    from runway_client.sandbox import Sandbox

KEY: Final = "INPUT_FILE"
CONTENT_TYPE: Final = "application/octet-stream"
HERE: Final = Path(__file__).resolve().parent
CLIENT_SCRIPT: Final = HERE / "bench_client.py"

Tool = Literal["client", "curl"]


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one upload goes: its URL and what identifies it to the target."""

    url: str
    handle: str


class Target(Protocol):
    name: str

    def destination(self, label: str, file: TestFile) -> Destination:
        """A fresh upload URL for ``file`` (created outside the timed region)."""
        ...

    def verify(self, destination: Destination, file: TestFile, sha256: str) -> str:
        """Check the upload landed whole; returns a short description of what was checked."""
        ...


class SinkTarget:
    name = "sink"

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def destination(self, label: str, file: TestFile) -> Destination:
        return Destination(url=self._sink.url(label), handle="/" + label)

    def verify(self, destination: Destination, file: TestFile, sha256: str) -> str:
        record = self._sink.record(destination.handle)
        check(record.status == 200, f"sink answered {record.status} to {destination.handle}")
        check(
            record.content_length == file.size and record.received == file.size,
            f"{destination.handle}: sink got Content-Length {record.content_length} and "
            f"{record.received} bytes, expected {file.size}",
        )
        return f"sink received {record.received} bytes"


class SandboxTarget:
    name = "sandbox"

    def __init__(self, sandbox: Sandbox) -> None:
        from runway_client.client import RunwayClient

        self._sb = sandbox
        self._client = RunwayClient(
            sandbox.runway_base_url,
            sandbox.auth_base_url,
            sandbox.client_id,
            sandbox.client_secret,
            sandbox.partner_code,
        )

    def close(self) -> None:
        self._client.close()

    def destination(self, label: str, file: TestFile) -> Destination:
        from returns.result import Failure

        from runway_client.pipeline import prepare_job
        from runway_client.steps import create_job
        from runway_client.wire import load_scopes

        config = self._client.config
        spec = prepare_job(
            partner=config.partner_code,
            tenant="ea",
            bundle="assessments/MAP_Growth",
            school_year="2026",
            input_files={KEY: str(file.path)},
        )
        job = spec.bind(
            lambda s: self._client.token(load_scopes(config.partner_code)).bind(
                lambda token: create_job(self._client.transport, config, token, s)
            )
        )
        if isinstance(job, Failure):
            raise BenchmarkError(f"sandbox: cannot create a job: {job.failure().message}")
        created = job.unwrap()
        return Destination(url=created.upload_urls[KEY], handle=created.uid)

    def verify(self, destination: Destination, file: TestFile, sha256: str) -> str:
        uid = destination.handle
        job = self._sb.job(uid)
        check(
            job.uploaded_bytes.get(KEY) == file.size,
            f"sandbox job {uid}: stored {job.uploaded_bytes.get(KEY)} bytes, expected {file.size}",
        )
        stored = self._sb.object_path(uid, KEY)
        check(stored.stat().st_size == file.size, f"{stored}: wrong size on disk")
        on_disk = _sha256_of(stored)
        check(
            job.uploaded_sha256.get(KEY) == on_disk == sha256 == file.sha256,
            f"sandbox job {uid}: sha256 recorded {job.uploaded_sha256.get(KEY)}, on disk "
            f"{on_disk}, expected {sha256} (file {file.sha256})",
        )
        stored.unlink()  # keep the sandbox's disk use flat across repeats
        return f"stored object {file.size} bytes, sha256 {on_disk[:12]}... matches"


@contextlib.contextmanager
def open_target(name: str) -> Iterator[Target]:
    """Start the named target on 127.0.0.1; stop it on exit."""
    if name == "sink":
        with Sink() as sink:
            yield SinkTarget(sink)
        return
    from runway_client.sandbox import Sandbox

    with Sandbox() as sb:
        target = SandboxTarget(sb)
        try:
            yield target
        finally:
            target.close()


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class Run:
    tool: Tool
    size: int
    wall_seconds: float
    transfer_seconds: float
    peak_rss_kib: int
    checked: str


def run_client(
    target: Target, file: TestFile, label: str, scratch: Path, profile_out: Path | None = None
) -> Run:
    destination = target.destination(label, file)
    command = [
        sys.executable,
        str(CLIENT_SCRIPT),
        "--file",
        str(file.path),
        "--url",
        destination.url,
        "--uid",
        destination.handle.strip("/"),
    ]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    done = run_measured(command, scratch)
    check(
        done.returncode == 0,
        f"client upload {label} exited {done.returncode}: {done.stderr.strip()}",
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    check(report["bytes"] == file.size, f"client receipt says {report['bytes']} bytes")
    check(
        report["sha256"] == file.sha256,
        f"client receipt sha256 {report['sha256']} != file's {file.sha256}",
    )
    checked = target.verify(destination, file, str(report["sha256"]))
    return Run(
        "client", file.size, done.wall_seconds, float(report["upload_seconds"]),
        done.peak_rss_kib, checked,
    )  # fmt: skip


def run_curl(curl: str, target: Target, file: TestFile, label: str, scratch: Path) -> Run:
    destination = target.destination(label, file)
    command = [
        curl, "-sS", "-o", "/dev/null", "-T", str(file.path),
        "-H", f"Content-Type: {CONTENT_TYPE}",
        "-w", "%{http_code} %{size_upload} %{time_total}",
        destination.url,
    ]  # fmt: skip
    done = run_measured(command, scratch)
    check(done.returncode == 0, f"curl upload {label} exited {done.returncode}: {done.stderr}")
    http_code, size_upload, time_total = done.stdout.split()
    check(http_code == "200", f"curl upload {label}: HTTP {http_code}")
    check(int(size_upload) == file.size, f"curl upload {label}: sent {size_upload} bytes")
    checked = target.verify(destination, file, file.sha256)
    return Run("curl", file.size, done.wall_seconds, float(time_total), done.peak_rss_kib, checked)


# ----------------------------------------------------------------------------- report


def print_report(
    target: str,
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
        f"target={target} file={big.size // MIB} MiB repeats={sum(r.tool == 'curl' for r in runs)} "
        f"cpus={os.cpu_count()} python={sys.version.split()[0]}"
    )
    header = (
        f"{'':8}{'wall s':>9}{'MiB/s':>9}{'xfer s':>9}{'MiB/s':>9}{'peak RSS MiB':>14}"
        f"   (medians; wall = whole process, xfer = the upload call / curl time_total)"
    )
    print(header)
    medians: dict[str, tuple[float, float, float]] = {}
    for tool in ("client", "curl"):
        mine = [r for r in runs if r.tool == tool]
        wall = statistics.median(r.wall_seconds for r in mine)
        xfer = statistics.median(r.transfer_seconds for r in mine)
        rss = max(r.peak_rss_kib for r in mine) / 1024
        medians[tool] = (wall, xfer, rss)
        print(
            f"{tool:8}{wall:9.3f}{_mib_s(big.size, wall):9.1f}{xfer:9.3f}"
            f"{_mib_s(big.size, xfer):9.1f}{rss:14.1f}"
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
        f"({_mib_s(big.size, hash_seconds):.0f} MiB/s); the client hashes while it sends, "
        "curl does not hash"
    )
    print(f"all {len(runs) + 2} uploads verified ({runs[-1].checked} for the last)")
    return wall_ratio


def print_profile(path: Path, top: int = 15) -> None:
    print()
    print(f"cProfile of one client upload_file call, top {top} by own time:")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Upload throughput and peak RSS of runway_client against curl -T."
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="uploads per tool (default 3)")
    parser.add_argument("--target", choices=("sink", "sandbox"), default="sink")
    parser.add_argument(
        "--small-mib", type=int, default=16, help="small file for the flat-memory check"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"profile one client upload even if the ratio is under {RATIO_TO_PROFILE}",
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.small_mib < 1 or args.repeat < 1:
        parser.error("--size-mib, --small-mib and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    curl = find_curl()
    if curl is None:
        print(
            "upload_vs_curl: curl not found (looked for /usr/bin/curl and on PATH); "
            "install curl (e.g. apt-get install curl) to compare against it",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="runway-bench-") as temp:
        scratch = Path(temp)
        began = time.perf_counter()
        big = write_test_file(scratch / "big.bin", args.size_mib)
        small = write_test_file(scratch / "small.bin", args.small_mib)
        print(
            f"wrote {args.size_mib} MiB + {args.small_mib} MiB of random bytes in "
            f"{time.perf_counter() - began:.1f} s; target {args.target}; curl {curl}; "
            f"peak RSS via {'/usr/bin/time -f %M' if HAVE_GNU_TIME else 'os.wait4'}",
            flush=True,
        )
        try:
            with open_target(args.target) as target:
                # The small runs come first: they also warm up both tools.
                small_client = run_client(target, small, "client-small", scratch)
                small_curl = run_curl(curl, target, small, "curl-small", scratch)
                runs: list[Run] = []
                for i in range(1, args.repeat + 1):
                    for run in (
                        run_client(target, big, f"client-{i}", scratch),
                        run_curl(curl, target, big, f"curl-{i}", scratch),
                    ):
                        runs.append(run)
                        print(
                            f"  {run.tool:6} #{i}: wall {run.wall_seconds:7.3f} s, "
                            f"xfer {run.transfer_seconds:7.3f} s, "
                            f"peak RSS {run.peak_rss_kib / 1024:6.1f} MiB; {run.checked}",
                            flush=True,
                        )
                ratio = print_report(
                    target.name, big, runs, small_client, small_curl, time_sha256(big.path)
                )
                if args.profile or ratio > RATIO_TO_PROFILE:
                    profile_out = scratch / "client.prof"
                    run_client(target, big, "client-profiled", scratch, profile_out)
                    print_profile(profile_out)
        except BenchmarkError as error:
            print(f"upload_vs_curl: FAILED: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
