"""``python -m runway_client.sandbox [--port N] [--registry PATH]``."""

from runway_client.sandbox.cli import serve

raise SystemExit(serve())
