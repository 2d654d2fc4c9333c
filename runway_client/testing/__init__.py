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
    """A running ``Sandbox`` with its defaults (built-in bundles, partner and tenant "ea")."""
    with Sandbox() as running:
        yield running
