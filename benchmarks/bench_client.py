"""One upload with the client library, run as a subprocess by ``upload_vs_curl.py``.

::

    python benchmarks/bench_client.py --file PATH --url URL [--uid UID] [--profile-out PATH]

Builds the ``Job`` directly (the URL given is its presigned upload URL), calls
``runway_client.steps.upload_file(RequestsTransport(...), job, "INPUT_FILE")``
and prints one JSON line: the seconds ``upload_file`` took and the receipt
(bytes, sha256, etag). Exit status 1, with the error on stderr, if the upload
fails. ``--profile-out`` runs the upload under cProfile and dumps the stats.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from datetime import UTC, datetime
from typing import Final

from returns.result import Failure, Result

from runway_client.errors import RunwayError
from runway_client.files import check_input_file
from runway_client.models import Job, JobSpec, SchoolYear, UploadReceipt
from runway_client.steps import upload_file
from runway_client.transport import RequestsTransport

KEY: Final = "INPUT_FILE"


def make_job(path: str, url: str, uid: str) -> Job:
    """A ``Job`` for one file at ``path`` whose upload URL is ``url``."""
    checked = check_input_file(KEY, path)
    if isinstance(checked, Failure):
        raise SystemExit(f"bench_client: {checked.failure().message}")
    spec = JobSpec(
        partner="ea",
        tenant="ea",
        bundle="assessments/MAP_Growth",
        school_year=SchoolYear(end_year=2026),
        files=(checked.unwrap(),),
    )
    return Job(uid=uid, upload_urls={KEY: url}, spec=spec, created_at=datetime.now(UTC))


def main(argv: list[str] | None = None) -> int:
    """Run one upload and print its timing and receipt as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--file", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--uid", default="bench-job")
    parser.add_argument("--profile-out", default=None)
    args = parser.parse_args(argv)

    job = make_job(args.file, args.url, args.uid)
    transport = RequestsTransport(connect_timeout=10.0, read_timeout=300.0)
    profiler = cProfile.Profile() if args.profile_out else None
    try:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        outcome: Result[UploadReceipt, RunwayError] = upload_file(transport, job, KEY)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - began
    finally:
        transport.close()
    if profiler is not None:
        profiler.dump_stats(args.profile_out)
    if isinstance(outcome, Failure):
        error = outcome.failure()
        print(
            f"bench_client: upload failed: {type(error).__name__}: {error.message}", file=sys.stderr
        )
        return 1
    receipt = outcome.unwrap()
    print(
        json.dumps(
            {
                "upload_seconds": seconds,
                "bytes": receipt.bytes,
                "sha256": receipt.sha256,
                "etag": receipt.etag,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
