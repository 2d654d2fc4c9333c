"""Every real sample input of ../shared/runway-data whose bundle is in the registry loads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runway_client import RunwayClient
from runway_client.sandbox import Sandbox
from tests.conftest import runway_data_dir

DATA = runway_data_dir()

# Which optional file key a sample belongs to in a bundle with several files
# (the rest load as the required INPUT_FILE).
FILE_KEYS_BY_NAME = {
    "assessments/STAR": {"Dashboard_Standards": "INPUT_FILE_DS", "SkillArea": "INPUT_FILE_SA"},
    "assessments/FastBridge_CBMreading": {
        "comprehension_question": "INPUT_FILE_COMP_QUESTION",
        "comprehension_recall": "INPUT_FILE_COMP_RECALL",
    },
}
# Param values read off a sample's name, where the bundle needs one.
PARAM_BY_NAME = {
    "psat_89": "PSAT 8/9",
    "psat_10": "PSAT 10",
    "psat_nmsqt": "PSAT/NMSQT",
    "alternate": "Alternate",
    "amath": "aMath",
    "areading": "aReading",
}


def bundles() -> dict[str, dict[str, object]]:
    if DATA is None:
        return {}
    registry = json.loads((DATA / "registry.json").read_text())
    return {b["path"]: b for b in registry["assessments"]}


def cases() -> list[tuple[str, Path]]:
    if DATA is None:
        return []
    found: list[tuple[str, Path]] = []
    for path in bundles():
        folder = DATA / "samples" / path.split("/", 1)[1]
        found.extend((path, sample) for sample in sorted(folder.glob("*")) if sample.is_file())
    return found


def params_for(bundle: dict[str, object], sample: Path) -> dict[str, str]:
    chosen = {}
    lowered = sample.stem.lower()
    for param in bundle.get("input_params", []):  # type: ignore[attr-defined]
        if not param["is_required"] or param["env_var"] == "API_YEAR":
            continue
        allowed = param.get("allowed_values")
        hinted = next(
            (
                v
                for hint, v in PARAM_BY_NAME.items()
                if hint in lowered and (not allowed or v in allowed)
            ),
            None,
        )
        chosen[param["env_var"]] = hinted or (
            allowed[0] if allowed else sample.stem.rsplit("_", 1)[-1]
        )
    return chosen


def file_key_for(bundle_path: str, sample: Path) -> str:
    hints = FILE_KEYS_BY_NAME.get(bundle_path, {})
    return next((key for hint, key in hints.items() if hint in sample.name), "INPUT_FILE")


@pytest.fixture(scope="module")
def registry_sandbox() -> Iterator[Sandbox]:
    if DATA is None:
        pytest.skip("../shared/runway-data is not beside this checkout")
    with Sandbox(registry_path=DATA / "registry.json") as sb:
        yield sb


@pytest.fixture(scope="module")
def registry_client(registry_sandbox: Sandbox) -> Iterator[RunwayClient]:
    sb = registry_sandbox
    with RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=sb.client_secret,
        partner_code=sb.partner_code,
    ) as client:
        yield client


def test_the_registry_has_samples_to_load() -> None:
    if DATA is None:
        pytest.skip("../shared/runway-data is not beside this checkout")
    assert len(cases()) >= 60  # 42 bundles, most with several samples


@pytest.mark.parametrize(
    ("bundle_path", "sample"), cases(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_each_sample_file_loads_byte_for_byte(
    registry_sandbox: Sandbox, registry_client: RunwayClient, bundle_path: str, sample: Path
) -> None:
    bundle = bundles()[bundle_path]
    key = file_key_for(bundle_path, sample)
    files = {key: sample}
    if key != "INPUT_FILE":  # the required file must come too
        files["INPUT_FILE"] = sample
    receipt = registry_client.load_files(
        tenant_code="ea",
        bundle_name=bundle_path,
        input_files=files,
        bundle_params=params_for(bundle, sample),
        school_year="2025-2026",
    )
    job = registry_sandbox.job(receipt.job_uid)
    data = sample.read_bytes()
    assert job.started
    assert job.school_year == "2026"
    assert job.files[key] == sample.name
    assert job.uploaded_bytes[key] == len(data)
    assert job.uploaded_sha256[key] == hashlib.sha256(data).hexdigest()
