"""One download with the client library, run as a subprocess by ``download_vs_curl.py``.

::

    python benchmarks/bench_download_client.py --url URL --name NAME --dest DIR
        [--profile-out PATH]

Calls ``runway_client.steps.download_file(RequestsTransport(...),
DownloadLinks(set_uid="bench", links={NAME: URL}), NAME, DIR, overwrite=True)``
and prints one JSON line: the seconds ``download_file`` took and the receipt
(name, path, bytes, sha256, skipped). Exit status 1, with the error on stderr,
if the download fails. ``--profile-out`` runs the download under cProfile and
dumps the stats.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from pathlib import Path

from returns.result import Failure, Result

from runway_client.errors import RunwayError
from runway_client.models import DownloadLinks, DownloadReceipt
from runway_client.steps import download_file
from runway_client.transport import RequestsTransport


def main(argv: list[str] | None = None) -> int:
    """Run one download and print its timing and receipt as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--profile-out", default=None)
    args = parser.parse_args(argv)

    links = DownloadLinks(set_uid="bench", links={args.name: args.url})
    transport = RequestsTransport(connect_timeout=10.0, read_timeout=300.0)
    profiler = cProfile.Profile() if args.profile_out else None
    try:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        outcome: Result[DownloadReceipt, RunwayError] = download_file(
            transport, links, args.name, Path(args.dest), overwrite=True
        )
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
            f"bench_download_client: download failed: {type(error).__name__}: {error.message}",
            file=sys.stderr,
        )
        return 1
    receipt = outcome.unwrap()
    print(
        json.dumps(
            {
                "download_seconds": seconds,
                "name": receipt.name,
                "path": receipt.path,
                "bytes": receipt.bytes,
                "sha256": receipt.sha256,
                "skipped": receipt.skipped,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
