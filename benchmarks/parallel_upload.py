"""The files of one job uploaded in parallel, against a sink that throttles each connection.

::

    python benchmarks/parallel_upload.py [--files 4] [--size-mib 24] [--rate-mib 12] [--repeat 3]

S3 limits each PUT stream (latency x window, per-connection throughput), not the
job, so the files of a bundle go faster side by side. The sink here reads every
connection no faster than ``--rate-mib`` MiB/s (its stand-in for that limit) and
records what each PUT delivered. In one run, alternating, it times:

- ``parallel``: ``runway_client._steps.upload`` of a ``--files``-file job with
  ``concurrency=--files`` (the client's default is 4);
- ``sequential``: the same call with ``concurrency=1``;
- ``curl``: ``--files`` ``curl -T FILE -H 'Expect:'`` processes started together.

and reports medians and the ratios parallel/curl (goal: at most 1.25) and
sequential/parallel. To show the sink is not the bottleneck it also times the
same curls against an unthrottled path: that aggregate rate must be well above
``--files x --rate-mib``. Every upload is checked: the sink must have received
exactly each file's bytes. Exit status 1 on a failed check, 2 without curl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from returns.result import Success

from runway_client._files import check_input_file
from runway_client._models import InputFile, Job, JobSpec, SchoolYear
from runway_client._steps import upload
from runway_client._transport import RequestsTransport

BLOCK = 256 * 1024


@dataclass(frozen=True)
class Received:
    path: str
    content_length: int
    received: int


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        sink = self.server
        assert isinstance(sink, _Sink)
        parts = urlsplit(self.path)
        rate = float(parse_qs(parts.query).get("rate", ["0"])[0]) * 1024 * 1024
        length = int(self.headers.get("Content-Length", "-1"))
        if length < 0 or "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.send_response(411)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        buffer = bytearray(BLOCK if not rate else max(16 * 1024, min(BLOCK, int(rate / 20))))
        view = memoryview(buffer)
        got = 0
        began = time.monotonic()
        while got < length:
            n = self.rfile.readinto(view[: min(len(buffer), length - got)])
            if not n:
                break
            got += n
            if rate:
                ahead = got / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        with sink.lock:
            sink.received.append(Received(parts.path, length, got))
        self.send_response(200 if got == length else 400)
        self.send_header("ETag", '"bench"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def _job(files: list[InputFile], base: str, run: str, rate: float) -> Job:
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/STAR",
        school_year=SchoolYear(end_year=2026),
        files=tuple(files),
    )
    urls = {f.key: f"{base}/{run}/{f.key}?rate={rate:g}" for f in files}
    return Job(uid=run, upload_urls=urls, spec=spec, created_at=datetime.now(UTC))


def _check(sink: _Sink, run: str, files: list[InputFile]) -> None:
    with sink.lock:
        seen = {r.path: r for r in sink.received if r.path.startswith(f"/{run}/")}
    for f in files:
        record = seen.get(f"/{run}/{f.key}")
        if record is None or record.received != f.size or record.content_length != f.size:
            raise SystemExit(f"parallel_upload: {run}: {f.key} not delivered whole: {record}")


def _client(
    transport: RequestsTransport,
    files: list[InputFile],
    base: str,
    run: str,
    *,
    rate: float,
    n: int,
) -> float:
    job = _job(files, base, run, rate)
    began = time.perf_counter()
    outcome = upload(transport, job, concurrency=n)
    took = time.perf_counter() - began
    if not isinstance(outcome, Success):
        raise SystemExit(f"parallel_upload: {run}: {outcome.failure()}")
    return took


def _curls(curl: str, files: list[InputFile], base: str, run: str, *, rate: float) -> float:
    began = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                curl,
                *("-sS", "-o", "/dev/null", "-T", f.path, "-H", "Expect:"),
                *("-H", "Content-Type: application/octet-stream"),
                f"{base}/{run}/{f.key}?rate={rate:g}",
            ]
        )
        for f in files
    ]
    codes = [p.wait() for p in procs]
    took = time.perf_counter() - began
    if any(codes):
        raise SystemExit(f"parallel_upload: {run}: curl exit statuses {codes}")
    return took


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=24)
    parser.add_argument("--rate-mib", type=float, default=12.0, help="per connection")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    curl = shutil.which("curl")
    if curl is None:
        print("parallel_upload: curl is not installed", file=sys.stderr)
        return 2
    sink = _Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{sink.server_address[1]}"
    keys = ["INPUT_FILE", "INPUT_FILE_DS", "INPUT_FILE_SA", "INPUT_FILE_4", "INPUT_FILE_5"]
    transport = RequestsTransport(connect_timeout=10, read_timeout=60, pool_size=args.files)
    with tempfile.TemporaryDirectory(prefix="parallel-upload-") as scratch:
        files: list[InputFile] = []
        for i in range(args.files):
            path = Path(scratch) / f"file{i}.csv"
            with open(path, "wb") as out:
                for _ in range(args.size_mib):
                    out.write(os.urandom(1024 * 1024))
            key = keys[i] if i < len(keys) else f"INPUT_FILE_{i}"
            files.append(check_input_file(key, str(path)).unwrap())
        rate = args.rate_mib
        times: dict[str, list[float]] = {"parallel": [], "sequential": [], "curl": []}
        _client(transport, files, base, "warm", rate=0, n=args.files)  # connections, imports
        runners: dict[str, Callable[[str], float]] = {
            "parallel": partial(_client, transport, files, base, rate=rate, n=args.files),
            "curl": partial(_curls, curl, files, base, rate=rate),
            "sequential": partial(_client, transport, files, base, rate=rate, n=1),
        }
        for r in range(args.repeat):
            for name, runner in runners.items():
                label = f"{name}-{r}"
                times[name].append(runner(label))
                _check(sink, label, files)
        ceiling = min(_curls(curl, files, base, f"ceiling-{r}", rate=0) for r in range(2))
        for r in range(2):
            _check(sink, f"ceiling-{r}", files)
    sink.shutdown()
    transport.close()
    total = args.files * args.size_mib
    med = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"{args.files} files x {args.size_mib} MiB, sink throttled to {rate:g} MiB/s per "
        f"connection, {args.repeat} repeats (medians):"
    )
    for name in ("parallel", "sequential", "curl"):
        print(f"  {name:<10} {med[name]:7.2f} s  {total / med[name]:7.1f} MiB/s")
    print(
        f"  sink ceiling (unthrottled, {args.files} curls): {total / ceiling:7.1f} MiB/s "
        f"(throttled need: {args.files * rate:g} MiB/s)"
    )
    print(f"ratio parallel/curl:      {med['parallel'] / med['curl']:.2f}  (goal <= 1.25)")
    print(f"ratio sequential/parallel: {med['sequential'] / med['parallel']:.2f}")
    if total / ceiling < 2 * args.files * rate:
        print("warning: the sink's ceiling is under twice the throttled need", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
