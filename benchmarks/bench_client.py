"""One upload with the client library, run as a subprocess by ``upload_vs_curl.py``.

::

    python benchmarks/bench_client.py --file PATH --url URL [--uid UID] [--profile-out PATH]

Builds the ``Job`` directly (the URL given is its presigned upload URL), calls
``runway_client._steps.upload_file(RequestsTransport(...), job, "INPUT_FILE")``
and prints one JSON line: the seconds ``upload_file`` took and the receipt
(bytes, sha256, etag). Exit status 1, with the error on stderr, if the upload
fails. ``--profile-out`` runs the upload under cProfile and dumps the stats.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Final

from bench_call import parse_call_args, report, timed_call
from returns.result import Failure

from runway_client._files import check_input_file
from runway_client._models import Job, JobSpec, SchoolYear, UploadReceipt
from runway_client._steps import upload_file

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
    args = parse_call_args(__doc__, argv, ("--file", "--url"), {"--uid": "bench-job"})
    job = make_job(args.file, args.url, args.uid)
    outcome, seconds = timed_call(
        lambda transport: upload_file(transport, job, KEY), args.profile_out
    )
    return report("bench_client", "upload", outcome, seconds, receipt_fields)


def receipt_fields(receipt: UploadReceipt) -> dict[str, object]:
    return {"bytes": receipt.bytes, "sha256": receipt.sha256, "etag": receipt.etag}


if __name__ == "__main__":
    sys.exit(main())
