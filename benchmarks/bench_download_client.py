"""One download with the client library, run as a subprocess by ``download_vs_curl.py``.

::

    python benchmarks/bench_download_client.py --url URL --name NAME --dest DIR
        [--profile-out PATH]

Calls ``runway_client._steps.download_file(RequestsTransport(...),
DownloadLinks(set_uid="bench", links={NAME: URL}), NAME, DIR, overwrite=True)``
and prints one JSON line: the seconds ``download_file`` took and the receipt
(name, path, bytes, sha256, skipped). Exit status 1, with the error on stderr,
if the download fails. ``--profile-out`` runs the download under cProfile and
dumps the stats.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench_call import parse_call_args, report, timed_call

from runway_client._models import DownloadLinks, DownloadReceipt
from runway_client._steps import download_file


def main(argv: list[str] | None = None) -> int:
    """Run one download and print its timing and receipt as JSON."""
    args = parse_call_args(__doc__, argv, ("--url", "--name", "--dest"))
    links = DownloadLinks(set_uid="bench", links={args.name: args.url})
    outcome, seconds = timed_call(
        lambda transport: download_file(
            transport, links, args.name, Path(args.dest), overwrite=True
        ),
        args.profile_out,
    )
    return report("bench_download_client", "download", outcome, seconds, receipt_fields)


def receipt_fields(receipt: DownloadReceipt) -> dict[str, object]:
    return {
        "name": receipt.name,
        "path": receipt.path,
        "bytes": receipt.bytes,
        "sha256": receipt.sha256,
        "skipped": receipt.skipped,
    }


if __name__ == "__main__":
    sys.exit(main())
