"""Test helpers for code that uses runway_client: a pytest fixture around the sandbox,
hypothesis strategies (``runway_client.testing.strategies``) and a scripted transport
(``runway_client.testing.transports``).

Register the fixture in a root ``conftest.py`` with
``pytest_plugins = ["runway_client.testing"]``, then ask for ``sandbox`` in a test::

    def test_token(sandbox):
        assert sandbox.runway_base_url.endswith("/api/v1")

The fixture needs pytest and the ``sandbox`` extra (werkzeug, PyJWT), imported only
when pytest loads this module as a plugin (and the sandbox only when a test asks for
it); the strategies need only this library and hypothesis.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runway_client.sandbox import Sandbox

__all__ = ["sandbox"]

if "pytest" in sys.modules:  # loaded by pytest (as a plugin, or from a test)
    import pytest

    @pytest.fixture
    def sandbox() -> Iterator[Sandbox]:
        """A running ``Sandbox`` with its defaults (built-in bundles, partner and tenant "ea").

        Example::

            def test_a_load(sandbox):
                client = RunwayClient(runway_base_url=sandbox.runway_base_url,
                                      auth_base_url=sandbox.auth_base_url,
                                      client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret,
                                      partner_code=sandbox.partner_code)
                ...
        """
        from runway_client.sandbox import Sandbox

        with Sandbox() as running:
            yield running
