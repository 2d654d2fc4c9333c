"""The Airflow wing's parts that need no Airflow: connection fields, provider info, the
store that keeps a load task's job between tries."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import runway_client.airflow as wing
from runway_client import InputError, PendingJob, RunwayClient
from runway_client.airflow.connection import client_settings
from runway_client.airflow.pending import PendingStore, TaskKey, default_state_dir
from runway_client.airflow.provider import get_provider_info
from runway_client.sandbox import Sandbox

KEY = TaskKey("dag", "load", "manual__1", 3)


def test_edu_edfi_airflow_extras_and_bare_extras_read_alike() -> None:
    prefixed = client_settings(
        host="https://api.x.org/api/v1",
        login="id",
        password="secret",
        extras={
            "extra__runway__auth_base_url": "https://a.auth0.com",
            "extra__runway__partner_code": "ea",
        },
    )
    bare = client_settings(
        host="https://api.x.org/api/v1",
        login="id",
        password="secret",
        extras={"auth_base_url": "https://a.auth0.com", "partner_code": "ea", "token_url": ""},
    )
    assert prefixed == bare
    assert bare["runway_base_url"] == "https://api.x.org/api/v1"
    assert bare["client_id"] == "id"
    assert bare["token_url"] is None  # blank form field = absent


def test_token_url_instead_of_auth_base_url_and_a_uri_style_host() -> None:
    settings = client_settings(
        host="api.x.org",
        login="id",
        password="s",
        extras={"token_url": "https://idp.example/oauth2/token", "partner_code": "ea"},
        port=8443,
        schema=None,
    )
    assert settings["runway_base_url"] == "https://api.x.org:8443/api/v1"
    assert settings["token_url"] == "https://idp.example/oauth2/token"
    assert settings["auth_base_url"] is None


def test_settings_build_a_working_client(sandbox: Sandbox) -> None:
    settings = client_settings(
        host=sandbox.runway_base_url,
        login=sandbox.client_id,
        password=sandbox.client_secret,
        extras={"extra__runway__auth_base_url": sandbox.auth_base_url, "partner_code": "ea"},
    )
    with RunwayClient(**settings) as client:
        assert client.verify_token() == ("ea",)


def test_missing_settings_are_all_reported() -> None:
    settings = client_settings(host=None, login=None, password=None, extras={})
    with pytest.raises(InputError) as caught:
        RunwayClient(**settings)
    assert len(caught.value.problems) >= 4


def test_provider_info_names_the_runway_connection_type() -> None:
    info = get_provider_info()
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "runway"
    assert conn["hook-class-name"] == "runway_client.airflow.hooks.RunwayHook"
    assert set(conn["conn-fields"]) == {"auth_base_url", "partner_code", "token_url", "audience"}
    assert "hidden-fields" in conn["ui-field-behaviour"]
    json.dumps(info)


def test_the_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (point,) = entry_points(group="apache_airflow_provider", name="provider_info")
    assert point.load() is get_provider_info


def test_the_wing_says_how_to_install_airflow() -> None:
    try:
        import airflow  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"runway-client\[airflow\]"):
            wing.RunwayHook  # noqa: B018
    else:  # pragma: no cover - the Airflow venv
        assert wing.RunwayHook.conn_type == "runway"
    with pytest.raises(AttributeError):
        wing.Nothing  # noqa: B018


def test_the_store_keeps_a_pending_job_then_its_receipt(
    client: RunwayClient, sat_csv: Path, tmp_path: Path
) -> None:
    store = PendingStore(tmp_path / "state")
    assert store.get(KEY) is None
    job = client.request_runway_job(
        "ea", "assessments/PSAT_SAT", {"INPUT_FILE": str(sat_csv)}, {"TEST_TYPE": "SAT"}, "2526"
    )
    store.save_pending(KEY, PendingJob(job=job.job))
    saved = store.get(KEY)
    assert saved is not None
    assert saved.pending == PendingJob(job=job.job)
    assert saved.receipt is None
    assert store.get(KEY._replace(map_index=4)) is None  # each mapped task its own
    receipt = client.resume(saved.pending)
    store.save_started(KEY, receipt)
    assert PendingStore(tmp_path / "state").get(KEY) == (None, receipt)  # another process
    store.forget(KEY)
    assert store.get(KEY) is None
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700


def test_an_unusable_store_is_an_input_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(InputError, match="task state file"):
        PendingStore(blocked / "state").get(KEY)


def test_the_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNWAY_AIRFLOW_STATE_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "runway_client"
    monkeypatch.setenv("RUNWAY_AIRFLOW_STATE_DIR", str(tmp_path / "x"))
    assert default_state_dir() == tmp_path / "x"


def test_the_wing_uses_only_the_public_face() -> None:
    import ast

    folder = Path(wing.__file__).parent
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert not name.startswith("runway_client._"), f"{source.name} imports {name}"
