"""Upload throughput and memory of the client library against ``curl -T``.

::

    .venv/bin/python benchmarks/upload_vs_curl.py [--size-mib 1024] [--repeat 3]
        [--target sink|sandbox] [--small-mib 16] [--profile]

Writes a file of random bytes (in chunks) to a temporary directory, starts an
upload target on 127.0.0.1 (``sink``: a stdlib server that reads and discards
the body; ``sandbox``: the sandbox's S3-like storage, which writes the object
to disk and hashes it), then uploads the file ``--repeat`` times with each of:

- the client: a subprocess (``bench_client.py``) calling
  ``runway_client._steps.upload_file(RequestsTransport(...), job, "INPUT_FILE")``;
- curl: ``curl -sS -o /dev/null -T FILE -H 'Content-Type: application/octet-stream' URL``
  (plus ``-w`` to read back its status, bytes sent and transfer time),

alternating client and curl. Each subprocess's wall time and peak RSS are
measured. The client is also run once on a ``--small-mib`` file to show its
peak RSS does not grow with the file. Every upload is checked: the sink must
have received exactly the file's bytes; the sandbox's stored object must have
the file's size and SHA-256 (the client's receipt SHA-256 for the client).

Peak RSS comes from ``bench_common.run_measured`` (GNU ``/usr/bin/time -f %M``;
without it, ``os.wait4``'s upper bound, marked as such).

Exit status: 0 on success, 1 if an upload or a check fails, 2 if curl is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from bench_common import (
    RSS_SOURCE,
    BenchmarkError,
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
from bench_sink import Sink

if TYPE_CHECKING:
    from runway_client.sandbox import Sandbox

KEY: Final = "INPUT_FILE"
CONTENT_TYPE: Final = "application/octet-stream"
HERE: Final = Path(__file__).resolve().parent
CLIENT_SCRIPT: Final = HERE / "bench_client.py"

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
        from runway_client._client import RunwayClient

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

        from runway_client._pipeline import prepare_job
        from runway_client._steps import create_job
        from runway_client.wire import load_scopes

        config = self._client.config
        spec = prepare_job(
            partner_code=config.partner_code,
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            school_year="2026",
            input_files={KEY: str(file.path)},
        )
        job = spec.bind(
            lambda s: self._client.token_cache(load_scopes(config.partner_code)).bind(
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
        on_disk = sha256_of(stored)
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


# ----------------------------------------------------------------------------- main


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("sink", "sandbox"), default="sink")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(
        argv,
        "Upload throughput and peak RSS of runway_client against curl -T.",
        "uploads",
        add_target,
    )
    return run_benchmark("upload_vs_curl", lambda curl, scratch: compare(args, curl, scratch))


def compare(args: argparse.Namespace, curl: str, scratch: Path) -> None:
    """Write the files, run both tools against the target, print the report."""
    big, small = write_test_files(
        scratch / "big.bin",
        scratch / "small.bin",
        args.size_mib,
        args.small_mib,
        f"target {args.target}",
        f"curl {curl}",
        f"peak RSS via {RSS_SOURCE}",
    )
    with open_target(args.target) as target:
        # The small runs come first: they also warm up both tools.
        small_client = run_client(target, small, "client-small", scratch)
        small_curl = run_curl(curl, target, small, "curl-small", scratch)
        runs = alternate(
            args.repeat,
            lambda i: run_client(target, big, f"client-{i}", scratch),
            lambda i: run_curl(curl, target, big, f"curl-{i}", scratch),
        )
        wording = Wording(
            setting=f"target={target.name}",
            call="upload_file",
            xfer="the upload call",
            hashing="sends",
            noun="uploads",
        )
        ratio = print_report(wording, big, runs, small_client, small_curl)
        profile_if_slow(
            ratio,
            args.profile,
            scratch,
            wording,
            lambda out: run_client(target, big, "client-profiled", scratch, out),
        )


if __name__ == "__main__":
    sys.exit(main())
