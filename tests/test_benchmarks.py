"""The start-up benchmark runs and reports ratios (its figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_startup_benchmark_reports_medians_and_ratios_to_bare_python() -> None:
    shown = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "startup.py"), "--repeat", "5", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    report = json.loads(shown)
    labels = ["python -c pass", 'python -c "import runway_client"', "runway-client --help"]
    assert list(report["median_s"]) == labels
    assert report["ratio"]["python -c pass"] == 1.0
    assert all(report["median_s"][label] > 0 for label in labels)
    assert report["repeat"] == 5
