"""``python -m runway_client.sandbox``: run a sandbox until Ctrl-C and print its settings.

The settings are printed as shell ``export`` lines (``RUNWAY_BASE_URL``,
``RUNWAY_AUTH_BASE_URL``, ``RUNWAY_CLIENT_ID``, ``RUNWAY_CLIENT_SECRET``,
``RUNWAY_PARTNER``), so ``eval`` of the first lines configures a client.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from runway_client.sandbox.server import Sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runway-client sandbox",
        description="Run a local Runway (token endpoint, External API v1, presigned storage).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    parser.add_argument("--registry", metavar="PATH", help="a registry.json of bundles to enable")
    parser.add_argument("--partner", default="ea", help="partner code (default: ea)")
    parser.add_argument("--client-id", help="client id (default: random)")
    parser.add_argument("--client-secret", help="client secret (default: random)")
    parser.add_argument("--storage-dir", metavar="DIR", help="keep uploads here (default: temp)")
    return parser


def settings_lines(sandbox: Sandbox) -> list[str]:
    """The ``export NAME=value`` lines that point a client at a running ``sandbox``."""
    settings = {
        "RUNWAY_BASE_URL": sandbox.runway_base_url,
        "RUNWAY_AUTH_BASE_URL": sandbox.auth_base_url,
        "RUNWAY_CLIENT_ID": sandbox.client_id,
        "RUNWAY_CLIENT_SECRET": sandbox.client_secret,
        "RUNWAY_PARTNER": sandbox.partner_code,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in settings.items()]


def serve(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run a sandbox until Ctrl-C or SIGTERM; returns the exit status (0)."""
    arguments = _parser().parse_args(argv)
    stream = sys.stdout if out is None else out
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
    sandbox = Sandbox(
        host=arguments.host,
        port=arguments.port,
        registry_path=arguments.registry,
        partner_code=arguments.partner,
        client_id=arguments.client_id,
        client_secret=arguments.client_secret,
        storage_dir=arguments.storage_dir,
    )
    with sandbox:
        for line in settings_lines(sandbox):
            print(line, file=stream)
        print("# token endpoint: " + sandbox.token_url, file=stream)
        print("# Runway sandbox running; Ctrl-C to stop.", file=stream, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
