"""Test helpers for code that uses runway_client: pytest fixtures around the sandbox.

Register them in a root ``conftest.py`` with ``pytest_plugins = ["runway_client.testing"]``,
then ask for ``sandbox`` in a test::

    def test_token(sandbox):
        assert sandbox.runway_base_url.endswith("/api/v1")

Needs the ``sandbox`` extra (werkzeug, PyJWT) and pytest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runway_client.sandbox import Sandbox

__all__ = ["sandbox"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A running ``Sandbox`` with its defaults (built-in bundles, partner and tenant "ea").

    Example::

        def test_a_load(sandbox):
            client = RunwayClient(runway_base_url=sandbox.runway_base_url, auth_base_url=sandbox.auth_base_url,
                                  client_id=sandbox.client_id, client_secret=sandbox.client_secret,
                                  partner_code=sandbox.partner_code)
            ...
    """
    with Sandbox() as running:
        yield running
