"""One whole ``RunwayClient.load_files`` as a process, for ``limits.py`` (import included).

::

    python benchmarks/bench_load.py --api http://127.0.0.1:PORT --file PATH
        [--ca CA.pem] [--no-sha256] [--verify-etag]

``--api`` is the stub Runway of ``limits.py`` (token, POST /jobs whose upload URL
points at the native sink, start). Prints one JSON line: the seconds
``load_files`` took, the bytes and SHA-256 of the receipt. Exit status 1, with
the error on stderr, if the load fails.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    began = time.perf_counter()
    flags = {a for a in argv if a in ("--no-sha256", "--verify-etag")}
    valued = [a for a in argv if a not in flags]
    args = dict(zip(valued[::2], valued[1::2], strict=False))
    from runway_client import RunwayClient, RunwayError  # timed: part of the process

    imported = time.perf_counter()
    client = RunwayClient(
        args["--api"] + "/api/v1",
        args["--api"],
        "bench-client",
        "bench-secret",
        "ea",
        verify=args.get("--ca", True),
        upload_sha256="--no-sha256" not in flags,
        verify_etag="--verify-etag" in flags,
    )
    try:
        loaded = time.perf_counter()
        receipt = client.load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": args["--file"]},
            school_year="2026",
        )
        done = time.perf_counter()
    except RunwayError as error:
        print(f"bench_load: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    (file,) = receipt.files
    import json

    print(
        json.dumps(
            {
                "import_seconds": imported - began,
                "load_seconds": done - loaded,
                "bytes": file.bytes,
                "sha256": str(file.sha256),
                "etag": file.etag,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
