"""A local Runway for tests and demos: an independent implementation of CONTRACT.md.

It serves, on loopback, an Auth0-like token endpoint, the External API v1 and an
S3-like presigned storage, and imports nothing from the client's core.

>>> from runway_client.sandbox import Sandbox
>>> with Sandbox() as sb:
...     sb.partner_code, sb.jobs()
('ea', ())
"""

from runway_client.sandbox.cli import serve
from runway_client.sandbox.jobs import SandboxJob
from runway_client.sandbox.output_sets import SandboxOutputSet
from runway_client.sandbox.server import Sandbox

__all__ = ["Sandbox", "SandboxJob", "SandboxOutputSet", "serve"]
