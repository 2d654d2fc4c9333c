"""Many small loads: ``load_many`` with ``concurrency=8`` against ``concurrency=1``.

::

    .venv/bin/python benchmarks/batch_concurrency.py [--loads 200] [--concurrency 8]

Starts ``runway-client sandbox`` in its own process (its own interpreter, as a real
server would be), writes ``--loads`` small CSV files (a few hundred bytes each) and
one manifest listing each as a MAP_Growth load, then runs the whole batch with

- ``reference``: ``RunwayClient.load_files`` called once per file in a loop (the
  loop every script used to write; one client, so its token cache and pool are shared);
- ``batch c=1``: ``RunwayClient.load_many(manifest, concurrency=1)``;
- ``batch c=N``: ``RunwayClient.load_many(manifest, concurrency=N)``,

each with a fresh client and a fresh journal (so every load is really made), twice,
in rotated order (the faster of the two counts). For each it reports loads per second, token requests sent to the identity
provider, and TCP connections opened (both counted from the client's own logs:
``runway_client``'s request log, and urllib3's "Starting new HTTP connection" and
"Resetting dropped connection": the sandbox's development server closes each
connection after its answer, so there most requests open one), and
the ratios to the ``batch c=1`` run. With ``--latency-ms`` the sandbox runs in this
process and holds back each token, create, upload and start answer that long (its
``stall`` fault), to show what concurrency hides of a real network's round trips. Every load must be ``started``; the script exits 1
otherwise.

Timings are figures for this machine and this run, to compare with each other; the
sandbox is single-host loopback, so the speed-up shows what concurrency hides of
per-request latency, not what a real Runway would sustain.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runway_client import RunwayClient
from runway_client.sandbox import Sandbox


class _Counter(logging.Handler):
    """Counts token requests and new connections from the client's DEBUG logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.guard = threading.Lock()
        self.tokens = 0
        self.connections = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        with self.guard:
            if record.name.startswith("urllib3") and (
                "Starting new HTTP" in message or "Resetting dropped connection" in message
            ):
                self.connections += 1
            elif record.name == "runway_client" and "/oauth/token" in message:
                self.tokens += 1


@dataclass(frozen=True)
class Result:
    name: str
    loads: int
    seconds: float
    tokens: int
    connections: int

    @property
    def per_second(self) -> float:
        return self.loads / self.seconds


def _sandbox() -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "runway_client.cli", "sandbox"],
        stdout=subprocess.PIPE,
        text=True,
    )
    settings: dict[str, str] = {}
    assert process.stdout is not None
    while len(settings) < 5:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the sandbox did not start")
        if line.startswith("export "):
            name, _, value = line[len("export ") :].strip().partition("=")
            settings[name] = value.strip("'")
    return process, settings


def _client(settings: dict[str, str]) -> RunwayClient:
    return RunwayClient(
        runway_base_url=settings["RUNWAY_BASE_URL"],
        auth_base_url=settings["RUNWAY_AUTH_BASE_URL"],
        client_id=settings["RUNWAY_CLIENT_ID"],
        client_secret=settings["RUNWAY_CLIENT_SECRET"],
        partner_code=settings["RUNWAY_PARTNER"],
    )


def _measure(name: str, counter: _Counter, loads: int, run: Callable[[], int]) -> Result:
    counter.tokens = counter.connections = 0
    began = time.perf_counter()
    started = run()
    seconds = time.perf_counter() - began
    if started != loads:
        print(f"{name}: only {started} of {loads} loads started", file=sys.stderr)
        raise SystemExit(1)
    return Result(name, loads, seconds, counter.tokens, counter.connections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="hold back every API and storage answer this long (an in-process sandbox's "
        "stall faults), to stand in for a real network's round trips",
    )
    args = parser.parse_args()

    counter = _Counter()
    for name in ("runway_client", "urllib3"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(counter)
        logger.propagate = False

    stalled: Sandbox | None = None
    if args.latency_ms > 0:
        stalled = Sandbox().start()
        settings = {
            "RUNWAY_BASE_URL": stalled.runway_base_url,
            "RUNWAY_AUTH_BASE_URL": stalled.auth_base_url,
            "RUNWAY_CLIENT_ID": stalled.client_id,
            "RUNWAY_CLIENT_SECRET": stalled.client_secret,
            "RUNWAY_PARTNER": stalled.partner_code,
        }
        sandbox = None
    else:
        sandbox, settings = _sandbox()

    def delay() -> None:
        if stalled is not None:
            stalled.clear_faults()
            for route in ("token", "create_job", "upload", "start"):
                stalled.inject(route, "stall", seconds=args.latency_ms / 1000, times=args.loads * 2)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
            root = Path(folder)
            lines = [
                "defaults: {tenant_code: ea, school_year: '2526', "
                "bundle_name: assessments/MAP_Growth}",
                "loads:",
            ]
            paths = []
            for n in range(args.loads):
                path = root / f"f{n:04d}.csv"
                path.write_bytes(
                    b"StudentId,RIT\n" + b"".join(b"%d,%d\n" % (n, i) for i in range(30))
                )
                paths.append(path)
                lines.append(f"  - input_files: {{INPUT_FILE: {path.name}}}")
            manifest = root / "loads.yaml"
            manifest.write_text("\n".join(lines) + "\n")

            def reference() -> int:
                with _client(settings) as client:
                    for path in paths:
                        client.load_files(
                            tenant_code="ea",
                            bundle_name="assessments/MAP_Growth",
                            input_files={"INPUT_FILE": path},
                            school_year="2526",
                        )
                return len(paths)

            def batch(concurrency: int, journal: str) -> int:
                with _client(settings) as client:
                    report = client.load_many(
                        manifest, journal=root / journal, concurrency=concurrency
                    )
                return report.count("started")

            runs = {
                "reference: load_files loop": reference,
                "batch c=1": lambda: batch(1, f"j1-{len(measured)}"),
                f"batch c={args.concurrency}": lambda: batch(
                    args.concurrency, f"jn-{len(measured)}"
                ),
            }
            # Each run twice, in rotated order, so that a sandbox slowing down as it
            # fills up weighs on every run alike; the faster of the two counts.
            measured: list[Result] = []
            for order in (list(runs), list(runs)[::-1]):
                for name in order:
                    delay()
                    measured.append(_measure(name, counter, args.loads, runs[name]))
            results = [
                min((m for m in measured if m.name == name), key=lambda m: m.seconds)
                for name in runs
            ]
    finally:
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait(timeout=30)
        if stalled is not None:
            stalled.stop()

    base = results[1]
    where = (
        f"an in-process sandbox answering after {args.latency_ms:g} ms"
        if stalled is not None
        else "a local sandbox process"
    )
    print(f"{args.loads} small loads (MAP_Growth, ~300 B each) against {where}")
    print(f"{'run':<28} {'seconds':>8} {'loads/s':>8} {'x c=1':>6} {'tokens':>7} {'conns':>6}")
    for r in results:
        print(
            f"{r.name:<28} {r.seconds:8.2f} {r.per_second:8.1f} "
            f"{r.per_second / base.per_second:6.2f} {r.tokens:7d} {r.connections:6d}"
        )
    print(f"cpus: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
