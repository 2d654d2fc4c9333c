"""One download with the client library as a process, for ``limits.py`` (import included).

::

    python benchmarks/bench_fetch.py --url URL --dest DIR [--ca CA.pem]

Calls ``runway_client._steps.download_file`` (the step ``RunwayClient.download``
runs per file: checked against ``Content-Length``, hashed, fsynced, renamed into
place) and prints one JSON line: the seconds it took, the bytes and SHA-256.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    began = time.perf_counter()
    args = dict(zip(argv[::2], argv[1::2], strict=False))  # only --option value pairs
    from pathlib import Path

    from runway_client._models import DownloadLinks
    from runway_client._steps import download_file
    from runway_client._transport import RequestsTransport

    imported = time.perf_counter()
    transport = RequestsTransport(
        connect_timeout=10.0, read_timeout=300.0, verify=args.get("--ca", True)
    )
    links = DownloadLinks(set_uid="bench", links={"big.bin": args["--url"]})
    fetched = time.perf_counter()
    outcome = download_file(transport, links, "big.bin", Path(args["--dest"]), overwrite=True)
    done = time.perf_counter()
    transport.close()
    if not hasattr(outcome, "unwrap") or outcome.__class__.__name__ != "Success":
        error = outcome.failure()
        print(f"bench_fetch: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    receipt = outcome.unwrap()
    print(
        f'{{"import_seconds": {imported - began:.6f}, "load_seconds": {done - fetched:.6f}, '
        f'"bytes": {receipt.bytes}, "sha256": "{receipt.sha256}"}}'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
