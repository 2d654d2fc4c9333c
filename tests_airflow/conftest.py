"""Airflow for these tests: a throwaway AIRFLOW_HOME with a SQLite metadata database
(``airflow db migrate``), the DAGs of ``dags/``, no examples. Run by .ci/run in its own
venv (``.venv-airflow``); skipped where Apache Airflow is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
collect_ignore = ["dags"]
pytest_plugins = ["runway_client.testing"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="runway-airflow-home-"))
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(HERE / "dags")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        import airflow  # noqa: F401
    except ImportError:
        return
    migrated = Path(os.environ["AIRFLOW_HOME"]) / ".runway-migrated"
    if not migrated.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        migrated.touch()
