"""Shared fixtures: the sandbox (over real HTTP on loopback) and the shared runway-data."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client import RunwayClient
from runway_client.sandbox import Sandbox

pytest_plugins = ["runway_client.testing"]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SAT = REPO / "examples" / "sat.csv"


def runway_data_dir() -> Path | None:
    """``../shared/runway-data`` beside the checkout (or $RUNWAY_DATA_DIR), if present."""
    given = os.environ.get("RUNWAY_DATA_DIR")
    candidates = [Path(given)] if given else []
    candidates.append(REPO.parent / "shared" / "runway-data")
    return next((c for c in candidates if (c / "registry.json").is_file()), None)


def use_sandbox_env(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``RUNWAY_*`` at a running sandbox, as ``. ./sandbox.env`` would."""
    monkeypatch.setenv("RUNWAY_BASE_URL", sb.runway_base_url)
    monkeypatch.setenv("RUNWAY_AUTH_BASE_URL", sb.auth_base_url)
    monkeypatch.setenv("RUNWAY_CLIENT_ID", sb.client_id)
    monkeypatch.setenv("RUNWAY_CLIENT_SECRET", sb.client_secret)
    monkeypatch.setenv("RUNWAY_PARTNER", sb.partner_code)
    monkeypatch.delenv("RUNWAY_TOKEN_URL", raising=False)


@pytest.fixture
def runway_data() -> Path:
    """The shared registry and samples; the test is skipped where they are absent."""
    found = runway_data_dir()
    if found is None:
        pytest.skip("../shared/runway-data is not beside this checkout")
    return found


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[RunwayClient]:
    """A ``RunwayClient`` connected to the ``sandbox`` fixture."""
    with RunwayClient(
        runway_base_url=sandbox.runway_base_url,
        auth_base_url=sandbox.auth_base_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        partner_code=sandbox.partner_code,
    ) as made:
        yield made


@pytest.fixture
def sat_csv(tmp_path: Path) -> Path:
    """A copy of the synthetic PSAT/SAT sample, named ``sat.csv``."""
    target = tmp_path / "to" / "sat.csv"
    target.parent.mkdir()
    target.write_bytes(EXAMPLE_SAT.read_bytes())
    return target


def write_random(path: Path, size: int) -> Path:
    """Write ``size`` random bytes to ``path`` 1 MiB at a time (pytest's own memory stays
    small: tests that measure a child's memory inherit the parent's)."""
    with open(path, "wb") as out:
        for start in range(0, size, 1024 * 1024):
            out.write(os.urandom(min(1024 * 1024, size - start)))
    return path


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
